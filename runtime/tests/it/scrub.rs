//! Scrubbing what varies from run to run out of tbt's output, so golden files compare what a
//! user reads: trace and span ids, ports after a loopback host, measured durations and times.

/// Replaces, word by word, what varies between runs: 32-hex words by `<trace-id>`, 16-hex words
/// by `<span-id>`, a port after `127.0.0.1:` or `localhost:` by `<port>`, a measured duration
/// (after `actual ` or `arrived `) by `<duration>`, and a number of milliseconds (`868 ms`) by
/// `<n>`.
pub fn words(text: &str) -> String {
    // Word by word: a word is a run of letters, digits, `.` and `µ`.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        // A sentence's full stop is not part of the word.
        let word = rest[..end].trim_end_matches('.');
        let end = word.len().max(1);
        let word = &rest[..end];
        let after_host = out.ends_with("127.0.0.1:") || out.ends_with("localhost:");
        let digits = word.bytes().all(|b| b.is_ascii_digit());
        out.push_str(match word {
            w if w.len() == 32 && is_hex(w) => "<trace-id>",
            w if w.len() == 16 && is_hex(w) => "<span-id>",
            _ if after_host && digits => "<port>",
            // a measured duration (`actual 412.3ms`), a test's time (`(868 ms)`, `in 870 ms`)
            w if (out.ends_with("actual ") || out.ends_with("arrived ")) && is_duration(w) => {
                "<duration>"
            }
            _ if digits && rest[end..].starts_with(" ms") => "<n>",
            w => w,
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == 'µ'
}

fn is_hex(w: &str) -> bool {
    w.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `412ms`, `1.5s`, `80µs`, `3ns`, `2m`.
fn is_duration(w: &str) -> bool {
    let digits = w.trim_end_matches(|c: char| c.is_alphabetic());
    let unit = &w[digits.len()..];
    let number = digits.trim_end_matches('.');
    !number.is_empty()
        && number.starts_with(|c: char| c.is_ascii_digit())
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && ["ns", "us", "µs", "ms", "s", "m", "h"].contains(&unit)
}
