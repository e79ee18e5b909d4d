//! The one redaction step between a run and everything it writes. [`Redactor`] knows every secret
//! of the run — `secret let` values, `TBT_OTLP_TOKEN`, the values of `TBT_TRACES_HEADERS`, the
//! password of a backend URL — and replaces each, wherever it appears, with `***`: the sinks of
//! `tbt run` (standard output and error, the JSON and JUnit reports, `.tbt/last-run.json`) pass
//! their whole text through it, so no call site has to remember to.
//!
//! A secret is found in every form tbt or a peer produces from it:
//!
//! - raw, and with any of its characters percent-encoded (upper- or lower-case hex, a space as
//!   `%20` or `+`: URLs and form bodies);
//! - JSON-escaped (`\"`, `\\`, `\/`, `\n`…, `\uXXXX`) and XML-escaped (`&amp;`, `&lt;`, `&#NN;`…),
//!   as reports and echoed bodies hold it;
//! - base64 (standard and URL-safe alphabets) at any alignment inside a longer encoded text
//!   (`Authorization: Basic …`), for secrets of 8 bytes or more — a shorter one's encoding would
//!   match ordinary base64 text too often.
//!
//! What it cannot find: a value the system under test transforms some other way (hashes it,
//! encrypts it, splits it) — `docs/cli.md`, "Secrets".

use base64::Engine;
use regex::Regex;
use std::borrow::Cow;
use std::fmt::Write as _;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this (in characters) are not redacted: they would mask everything.
pub const MIN_CHARS: usize = 3;

/// Base64 forms are matched for secrets of at least this many bytes.
pub const MIN_BASE64_BYTES: usize = 8;

/// Replaces every secret, in every form listed in the module docs, with [`MASK`].
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    pattern: Option<Regex>,
}

impl Redactor {
    /// A redactor of these values; empty and very short ones (under [`MIN_CHARS`]) are ignored.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_CHARS)
            .collect();
        // Longest first: the alternation is leftmost-first, and a secret containing another is
        // masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        if secrets.is_empty() {
            return Redactor::default();
        }
        let mut alternatives: Vec<String> = secrets.iter().map(|s| any_escaping(s)).collect();
        for s in &secrets {
            alternatives.extend(base64_cores(s).iter().map(|c| regex::escape(c)));
        }
        let pattern = regex::RegexBuilder::new(&alternatives.join("|"))
            .size_limit(64 << 20)
            .build()
            .ok();
        Redactor { pattern }
    }

    /// The secrets of a run: the suite's `secret let` values, the receiver token, the values of
    /// `TBT_TRACES_HEADERS`, and `more` (a backend URL's password).
    pub fn for_run(
        secret_lets: Vec<String>,
        otlp_token: Option<&str>,
        more: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut all = secret_lets;
        all.extend(otlp_token.map(str::to_owned));
        all.extend(env_secrets());
        all.extend(more);
        Redactor::new(all)
    }

    /// The text with every secret replaced.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.pattern {
            Some(p) => p.replace_all(text, MASK),
            None => Cow::Borrowed(text),
        }
    }

    /// True when `text` holds no secret in any form.
    pub fn is_clean(&self, text: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| !p.is_match(text))
    }
}

/// Secrets that come from tbt's environment rather than the suite: the values of
/// `TBT_TRACES_HEADERS` as written and as parsed (with the credential of an `Authorization`
/// value).
fn env_secrets() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(headers) = std::env::var(crate::remote::HEADERS_ENV) {
        for pair in headers.split(',') {
            if let Some((_, value)) = pair.split_once('=') {
                out.extend(header_secrets(value.trim()));
            }
        }
    }
    for (_, value) in crate::remote::headers_from_env().unwrap_or_default() {
        out.extend(header_secrets(&value));
    }
    out
}

/// A header value and, for `Scheme credential` (`Bearer …`, `Basic …`), the credential alone —
/// and, for `Basic`, the password inside it.
pub fn header_secrets(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    if let Some((scheme, credential)) = value.split_once(' ') {
        let credential = credential.trim();
        out.push(credential.to_owned());
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(credential)
            && let Ok(text) = String::from_utf8(bytes)
            && let Some((_, password)) = text.split_once(':')
        {
            out.push(password.to_owned());
        }
    }
    out
}

/// A regular expression matching `secret` with each character in any of its escapings.
fn any_escaping(secret: &str) -> String {
    let mut re = String::new();
    for c in secret.chars() {
        // Escaped forms first: the alternation is leftmost-first, and a literal `%` or `&`
        // must not win over the `%25` or `&amp;` that spells the same character.
        let mut forms: Vec<String> = Vec::new();
        // Percent-encoded UTF-8, either case of hex.
        let mut pct = String::new();
        for b in c.encode_utf8(&mut [0; 4]).bytes() {
            let _ = write!(pct, "%(?i:{b:02x})");
        }
        forms.push(pct);
        // JSON's \uXXXX (a UTF-16 pair beyond the BMP), either case of hex.
        let mut units = [0u16; 2];
        let json: String = c
            .encode_utf16(&mut units)
            .iter()
            .map(|u| format!(r"\\u(?i:{u:04x})"))
            .collect();
        forms.push(json);
        // XML numeric references.
        forms.push(format!("&#0*{};", c as u32));
        forms.push(format!("&#[xX]0*(?i:{:x});", c as u32));
        let named: &[&str] = match c {
            ' ' => &[r"\+"],
            '"' => &[r#"\\""#, "&quot;"],
            '\\' => &[r"\\\\"],
            '/' => &[r"\\/"],
            '&' => &["&amp;"],
            '<' => &["&lt;"],
            '>' => &["&gt;"],
            '\'' => &["&apos;"],
            '\n' => &[r"\\n"],
            '\r' => &[r"\\r"],
            '\t' => &[r"\\t"],
            '\u{8}' => &[r"\\b"],
            '\u{c}' => &[r"\\f"],
            _ => &[],
        };
        forms.extend(named.iter().map(|s| (*s).to_owned()));
        forms.push(regex::escape(c.encode_utf8(&mut [0; 4])));
        let _ = write!(re, "(?:{})", forms.join("|"));
    }
    re
}

/// The parts of `secret`'s base64 encoding that appear whatever precedes it in the encoded
/// bytes: for each of the three alignments, the encoding of the whole 3-byte groups it fills,
/// in the standard and the URL-safe alphabets.
fn base64_cores(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    if bytes.len() < MIN_BASE64_BYTES {
        return Vec::new();
    }
    let mut out = Vec::new();
    for skip in 0..3 {
        let whole = (bytes.len() - skip) / 3 * 3;
        let part = &bytes[skip..skip + whole];
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let core = engine.encode(part);
            if !out.contains(&core) {
                out.push(core);
            }
        }
    }
    out
}

/// The forms of `secret` that [`Redactor`] masks, each written by an ordinary encoder (not by
/// the redactor's matcher), named: what tests check every output against.
pub fn encodings(secret: &str) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut out = vec![
        ("raw", secret.to_owned()),
        ("percent %20", url_encode(secret, false, false)),
        ("percent lower-case", url_encode(secret, false, true)),
        ("form +", url_encode(secret, true, false)),
        ("json", {
            let j = serde_json::to_string(secret).unwrap_or_default();
            j.get(1..j.len().saturating_sub(1))
                .unwrap_or_default()
                .to_owned()
        }),
        ("json ascii", json_ascii(secret)),
        ("xml", xml(secret)),
    ];
    if secret.len() >= MIN_BASE64_BYTES {
        for prefix in ["", "u", "us", "user:"] {
            out.push(("base64", STANDARD.encode(format!("{prefix}{secret}"))));
            out.push((
                "base64 url-safe",
                URL_SAFE.encode(format!("{prefix}{secret}")),
            ));
        }
    }
    out
}

fn url_encode(s: &str, plus: bool, lower: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if plus => out.push('+'),
            _ if lower => {
                let _ = write!(out, "%{b:02x}");
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn json_ascii(s: &str) -> String {
    let mut units = [0u16; 2];
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            for u in c.encode_utf16(&mut units).iter() {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    #[test]
    fn every_form_of_a_secret_is_masked() {
        let r = Redactor::new(["p@ss word/\"x\"+é".to_owned()]);
        for (form, text) in encodings("p@ss word/\"x\"+é") {
            let out = r.redact(&format!("before {text} after")).into_owned();
            if form.starts_with("base64") {
                // The groups that mix the secret's first and last bytes with its neighbours'
                // (or padding) may stay; the bytes of the secret between them go.
                assert!(
                    out.contains(MASK) && !out.contains(&text),
                    "{form}: {text} -> {out}"
                );
            } else {
                assert_eq!(out, "before *** after", "{form}: {text}");
            }
        }
        assert!(r.is_clean("nothing here"));
        assert_eq!(
            r.redact("p@ss"),
            "p@ss",
            "a part of a secret is not the secret"
        );
    }

    #[test]
    fn short_and_empty_values_are_not_secrets_and_longer_ones_win() {
        let r = Redactor::new([
            "ab".to_owned(),
            String::new(),
            "token".into(),
            "token-2".into(),
        ]);
        assert_eq!(r.redact("ab token token-2"), "ab *** ***");
        assert!(Redactor::new(Vec::new()).is_clean("anything"));
    }

    #[test]
    fn a_basic_credential_yields_its_password() {
        let value = format!("Basic {}", STANDARD.encode("alice:s3cret-pw"));
        let secrets = header_secrets(&value);
        assert!(secrets.contains(&"s3cret-pw".to_owned()), "{secrets:?}");
        let r = Redactor::new(secrets);
        assert_eq!(
            r.redact(&format!("echo: authorization: {value}")),
            "echo: authorization: ***"
        );
        assert_eq!(r.redact("password s3cret-pw"), "password ***");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::redact::tests::cases()))]

        /// Any secret, in any promised form, between any text, is masked; the text around it is
        /// kept.
        #[test]
        fn generated_secrets_in_every_form_are_masked(
            secret in "[ -~]{3,24}|[a-zA-Z0-9 é€😀\"\\\\/&<>+%]{3,16}",
            before in "[a-z ]{0,8}",
            after in "[a-z ]{0,8}",
        ) {
            let r = Redactor::new([secret.clone()]);
            for (form, text) in encodings(&secret) {
                let out = r.redact(&format!("{before}|{text}|{after}")).into_owned();
                if form.starts_with("base64") {
                    // The encoded neighbours of the secret's bytes may stay: what matters is
                    // that the secret's own bytes are gone.
                    prop_assert!(out.contains(MASK), "{} not masked: {} -> {}", form, text, out);
                } else {
                    prop_assert_eq!(
                        out,
                        format!("{before}|{MASK}|{after}"),
                        "{} not masked: {}", form, text
                    );
                }
            }
        }
    }

    /// Proptest cases: 256 by default, `PROPTEST_CASES` wins.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256)
    }
}
