//! Lower-case hex, the one text form of trace and span ids (W3C `traceparent`, backends' URLs,
//! reports).

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Exactly `2 * N` hex digits (either case) as bytes; `None` for any other text.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_text() {
        let bytes = [0x00, 0x1f, 0xa0, 0xff];
        assert_eq!(encode(&bytes), "001fa0ff");
        assert_eq!(decode::<4>("001FA0ff"), Some(bytes));
        assert_eq!(decode::<4>("001fa0f"), None);
        assert_eq!(decode::<4>("001fa0fg"), None);
        assert_eq!(decode::<4>("001fa0ff00"), None);
        // A multi-byte character has the right byte length but is no digit.
        assert_eq!(decode::<2>("é00"), None);
    }
}
