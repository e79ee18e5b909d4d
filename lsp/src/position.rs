//! Byte offsets (what the compiler's spans hold) ↔ LSP positions (line, UTF-16 code unit).
//!
//! Every conversion is total: a position past the end of a line or of the text is clamped to it,
//! a position inside a character (the second half of a surrogate pair) or an offset inside a
//! UTF-8 sequence moves to the start of that character. Clients do send such positions (stale
//! requests racing an edit), and a language server must not die of them.

use tower_lsp_server::ls_types::{Position, Range};

/// Line starts of one text, for converting in both directions.
#[derive(Clone, Debug)]
pub struct LineIndex {
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`. Lines end at `\n`, `\r\n` or a lone `\r`, as the protocol says.
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = Vec::with_capacity(bytes.len() / 32 + 1);
        starts.push(0);
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n') {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// Number of lines (a text ending in `\n` has an empty last line).
    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// The byte range of line `line` without its line ending, clamped to the text.
    fn line_bounds(&self, text: &str, line: usize) -> (usize, usize) {
        let start = self
            .starts
            .get(line)
            .copied()
            .unwrap_or(text.len())
            .min(text.len());
        let Some(&next) = self.starts.get(line + 1) else {
            return (start, text.len());
        };
        // `next - 1` is the terminator (`\n` or a lone `\r`); `\r\n` counts as one.
        let mut end = next.saturating_sub(1).clamp(start, text.len());
        let bytes = text.as_bytes();
        if bytes.get(end) == Some(&b'\n') && end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        (start, end)
    }

    /// The LSP position of byte `offset` (clamped to the text and to a character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        // An offset inside a line ending is the end of the line.
        let (start, end) = self.line_bounds(text, line);
        let end = offset.clamp(start, end);
        let character: usize = text[start..end].chars().map(char::len_utf16).sum();
        Position {
            line: line as u32,
            character: character as u32,
        }
    }

    /// The byte offset of an LSP position, clamped as described in the module docs.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let line = pos.line as usize;
        if line >= self.starts.len() {
            return text.len();
        }
        let (start, end) = self.line_bounds(text, line);
        let want = pos.character as usize;
        let mut units = 0usize;
        for (i, c) in text[start..end].char_indices() {
            let next = units + c.len_utf16();
            if next > want {
                return start + i;
            }
            units = next;
        }
        end
    }

    /// The LSP range of a byte range.
    pub fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range {
            start: self.position(text, start),
            end: self.position(text, end.max(start)),
        }
    }

    /// The byte range of an LSP range (start ≤ end even when the client swapped them).
    pub fn offsets(&self, text: &str, range: Range) -> (usize, usize) {
        let a = self.offset(text, range.start);
        let b = self.offset(text, range.end);
        (a.min(b), a.max(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn ascii_round_trip() {
        let t = "ab\ncd\n";
        let ix = LineIndex::new(t);
        assert_eq!(ix.position(t, 4), pos(1, 1));
        assert_eq!(ix.offset(t, pos(1, 1)), 4);
        assert_eq!(ix.position(t, 6), pos(2, 0));
        assert_eq!(ix.line_count(), 3);
    }

    #[test]
    fn utf16_counts_surrogate_pairs_twice() {
        // é: 2 bytes, 1 unit; 😀: 4 bytes, 2 units.
        let t = "é😀x";
        let ix = LineIndex::new(t);
        assert_eq!(ix.position(t, 2), pos(0, 1));
        assert_eq!(ix.position(t, 6), pos(0, 3));
        assert_eq!(ix.offset(t, pos(0, 3)), 6);
        // Inside the surrogate pair: the start of the emoji.
        assert_eq!(ix.offset(t, pos(0, 2)), 2);
        // Inside a UTF-8 sequence: the start of the character.
        assert_eq!(ix.position(t, 4), pos(0, 1));
    }

    #[test]
    fn all_three_line_endings() {
        let t = "a\r\nb\rc\nd";
        let ix = LineIndex::new(t);
        assert_eq!(ix.line_count(), 4);
        assert_eq!(ix.position(t, 3), pos(1, 0));
        assert_eq!(ix.position(t, 5), pos(2, 0));
        assert_eq!(
            ix.position(t, 2),
            pos(0, 1),
            "between \\r and \\n: the line's end"
        );
        assert_eq!(ix.offset(t, pos(1, 5)), 4, "before the lone \\r");
        assert_eq!(ix.offset(t, pos(3, 1)), t.len());
    }

    #[test]
    fn out_of_range_is_clamped() {
        let t = "ab\r\ncd";
        let ix = LineIndex::new(t);
        assert_eq!(ix.offset(t, pos(0, 99)), 2, "before the \\r\\n");
        assert_eq!(ix.offset(t, pos(7, 0)), t.len());
        assert_eq!(ix.position(t, 99), pos(1, 2));
        let (a, b) = ix.offsets(
            t,
            Range {
                start: pos(1, 1),
                end: pos(0, 0),
            },
        );
        assert_eq!((a, b), (0, 5));
    }
}
