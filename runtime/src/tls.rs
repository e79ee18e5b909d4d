//! One TLS crypto provider for the whole process.
//!
//! reqwest and tonic are built on rustls without a default provider (to avoid building aws-lc);
//! the ring provider is installed once, before the first client is built. Every TLS user calls
//! [`install_crypto_provider`]; calling it again is free.

/// Installs rustls' ring provider as the process default (no-op when one is installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
