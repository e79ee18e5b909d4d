//! The embedded OTLP trace receiver: the default, zero set-up trace source of `tbt run`.
//!
//! Why it exists: services under test export their spans with standard OpenTelemetry exporters; the
//! receiver accepts them over OTLP/gRPC (`TraceService/Export`, [`grpc`]) and OTLP/HTTP
//! (`POST /v1/traces`, protobuf or JSON, [`http`]), optionally gzip-compressed, and writes them into
//! a [`TraceStore`] that wakes the tests waiting for them.
//!
//! What it must not do: listen beyond loopback unless told to (the defaults are `127.0.0.1`), log or
//! echo the bearer token, let one bad request stop it (bad payloads get 400 / `INVALID_ARGUMENT` and
//! the next request is served), hold a decompressed body beyond the configured limit, or interpret
//! spans (that is the scheduler's and the evaluator's job).

pub mod grpc;
pub mod http;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::store::TraceStore;

/// Default OTLP/gRPC address.
pub const DEFAULT_GRPC_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4317);
/// Default OTLP/HTTP address.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4318);
/// Default limit of a request body, after decompression: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;

/// How to run the receiver.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// OTLP/gRPC listen address; `None` disables gRPC. Port 0 picks a free port.
    pub grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address; `None` disables HTTP. Port 0 picks a free port.
    pub http_addr: Option<SocketAddr>,
    /// When set, requests must carry `authorization: Bearer <token>`. Never logged.
    pub bearer_token: Option<String>,
    /// Largest accepted request body, after decompression.
    pub max_request_bytes: usize,
}

impl Default for ReceiverConfig {
    /// gRPC on `127.0.0.1:4317`, HTTP on `127.0.0.1:4318`, no token, 16 MiB requests.
    fn default() -> Self {
        ReceiverConfig {
            grpc_addr: Some(DEFAULT_GRPC_ADDR),
            http_addr: Some(DEFAULT_HTTP_ADDR),
            bearer_token: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

impl ReceiverConfig {
    /// Both protocols on loopback with ports chosen by the OS (tests, parallel runs).
    pub fn ephemeral() -> Self {
        ReceiverConfig {
            grpc_addr: Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)),
            http_addr: Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)),
            ..ReceiverConfig::default()
        }
    }
}

impl fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

/// The wire protocol of a listener, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "OTLP/gRPC",
            Protocol::Http => "OTLP/HTTP",
        })
    }
}

/// Why the receiver could not start or stopped abnormally. Every variant is an infrastructure
/// error (exit code 3 for the CLI).
#[derive(Debug)]
pub enum ReceiverError {
    /// The address is taken by another process.
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
        /// Which listener wanted it.
        protocol: Protocol,
    },
    /// Binding failed for another reason (permission, address not available, …).
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Which listener wanted it.
        protocol: Protocol,
        /// The operating system's error.
        source: io::Error,
    },
    /// A server stopped with an error after it had started.
    Serve {
        /// Which server.
        protocol: Protocol,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiverError::AddrInUse { addr, protocol } => {
                let (flag, key) = match protocol {
                    Protocol::Grpc => ("--otlp-grpc", "otlp_grpc"),
                    Protocol::Http => ("--otlp-http", "otlp_http"),
                };
                write!(
                    f,
                    "{addr} is already in use (wanted by the {protocol} receiver; another tbt, a \
                     Collector or an agent may hold it): choose another address with `{flag} \
                     127.0.0.1:0` (a free port, handed to the suite's services) or `{key}` in \
                     tbt.toml"
                )
            }
            ReceiverError::Bind {
                addr,
                protocol,
                source,
            } => write!(
                f,
                "cannot listen on {addr} for the {protocol} receiver: {source}"
            ),
            ReceiverError::Serve { protocol, message } => {
                write!(f, "the {protocol} receiver failed: {message}")
            }
        }
    }
}

impl std::error::Error for ReceiverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReceiverError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Entry point: starts the configured listeners.
#[derive(Debug)]
pub struct Receiver;

impl Receiver {
    /// Binds every configured listener (all or none: a failure releases those already bound), then
    /// serves in background tasks on the current tokio runtime, writing spans into `store`.
    pub async fn start(
        config: ReceiverConfig,
        store: TraceStore,
    ) -> Result<RunningReceiver, ReceiverError> {
        let grpc_listener = match config.grpc_addr {
            Some(addr) => Some(bind(addr, Protocol::Grpc).await?),
            None => None,
        };
        let http_listener = match config.http_addr {
            Some(addr) => Some(bind(addr, Protocol::Http).await?),
            None => None,
        };
        let auth = Auth::new(config.bearer_token.as_deref());
        let mut servers = Vec::new();
        let mut grpc_addr = None;
        let mut http_addr = None;
        if let Some(listener) = grpc_listener {
            grpc_addr = Some(local_addr(&listener, Protocol::Grpc)?);
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(grpc::serve(
                listener,
                store.clone(),
                auth.clone(),
                config.max_request_bytes,
                async {
                    let _ = stopped.await;
                },
            ));
            servers.push(Server {
                protocol: Protocol::Grpc,
                stop,
                task,
            });
        }
        if let Some(listener) = http_listener {
            http_addr = Some(local_addr(&listener, Protocol::Http)?);
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(http::serve(
                listener,
                store.clone(),
                auth,
                config.max_request_bytes,
                async {
                    let _ = stopped.await;
                },
            ));
            servers.push(Server {
                protocol: Protocol::Http,
                stop,
                task,
            });
        }
        Ok(RunningReceiver {
            grpc_addr,
            http_addr,
            store,
            servers,
        })
    }
}

async fn bind(addr: SocketAddr, protocol: Protocol) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            ReceiverError::AddrInUse { addr, protocol }
        } else {
            ReceiverError::Bind {
                addr,
                protocol,
                source,
            }
        }
    })
}

fn local_addr(listener: &TcpListener, protocol: Protocol) -> Result<SocketAddr, ReceiverError> {
    listener
        .local_addr()
        .map_err(|source| ReceiverError::Serve {
            protocol,
            message: format!("cannot read the bound address: {source}"),
        })
}

struct Server {
    protocol: Protocol,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

/// How long [`RunningReceiver::shutdown`] lets in-flight requests finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// A started receiver. Dropping it stops the listeners too; [`RunningReceiver::shutdown`] also
/// waits for in-flight requests to finish.
pub struct RunningReceiver {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    store: TraceStore,
    servers: Vec<Server>,
}

impl fmt::Debug for RunningReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningReceiver")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish()
    }
}

impl RunningReceiver {
    /// The bound OTLP/gRPC address (the actual port when 0 was asked for).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The bound OTLP/HTTP address (the actual port when 0 was asked for).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `http://ADDR` of the gRPC listener, as `OTEL_EXPORTER_OTLP_ENDPOINT` for
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.
    pub fn grpc_endpoint(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// `http://ADDR` of the HTTP listener, as `OTEL_EXPORTER_OTLP_ENDPOINT` for
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` or `http/json` (exporters append `/v1/traces`).
    pub fn http_endpoint(&self) -> Option<String> {
        self.http_addr.map(|addr| format!("http://{addr}"))
    }

    /// The store the receiver writes into.
    pub fn store(&self) -> &TraceStore {
        &self.store
    }

    /// Stops accepting connections, lets in-flight requests finish for at most
    /// [`SHUTDOWN_GRACE`], then closes every connection left — a client that holds one open (a
    /// stuck exporter, a half-sent request, a port probe) does not keep the run alive. Reports
    /// the first server that had failed.
    pub async fn shutdown(mut self) -> Result<(), ReceiverError> {
        let servers = std::mem::take(&mut self.servers);
        let mut waiting = Vec::new();
        for server in servers {
            let _ = server.stop.send(());
            waiting.push((server.protocol, server.task));
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut first_error = None;
        for (protocol, mut task) in waiting {
            let joined = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    // Graceful shutdown waits for every connection: end them instead.
                    task.abort();
                    continue;
                }
            };
            let outcome = match joined {
                Ok(Ok(())) => continue,
                Ok(Err(message)) => message,
                Err(join_error) => join_error.to_string(),
            };
            first_error.get_or_insert(ReceiverError::Serve {
                protocol,
                message: outcome,
            });
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The bearer-token check shared by both protocols. Compares in constant time so the token cannot
/// be guessed byte by byte from response times.
#[derive(Clone)]
pub(crate) struct Auth {
    expected: Option<std::sync::Arc<[u8]>>,
}

impl Auth {
    pub(crate) fn new(token: Option<&str>) -> Auth {
        Auth {
            expected: token.map(|t| format!("Bearer {t}").into_bytes().into()),
        }
    }

    /// Whether a request with this `authorization` header value may pass.
    pub(crate) fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let Some(given) = authorization else {
            return false;
        };
        if given.len() != expected.len() {
            return false;
        }
        given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}
