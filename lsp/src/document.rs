//! Open documents: `Document { version, text }` per URI, edited by `didChange`.

use crate::position::LineIndex;
use std::sync::Arc;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

/// One open document as the editor has it.
#[derive(Clone, Debug)]
pub struct Document {
    /// The editor's version number (increases with every change).
    pub version: i32,
    /// The current text. Shared with compilations in flight, so an edit copies it only while a
    /// compile still reads the old one.
    pub text: Arc<String>,
    /// Line starts of `text`.
    pub index: Arc<LineIndex>,
}

impl Document {
    /// A freshly opened document.
    pub fn new(version: i32, text: String) -> Self {
        let index = Arc::new(LineIndex::new(&text));
        Document {
            version,
            text: Arc::new(text),
            index,
        }
    }

    /// Applies the changes of one `didChange` in order (ranged ones incrementally, the others
    /// replace the whole text) and takes the new version. Ranges outside the text are clamped.
    pub fn apply(&mut self, version: i32, changes: Vec<TextDocumentContentChangeEvent>) {
        for change in changes {
            match change.range {
                None => {
                    self.text = Arc::new(change.text);
                }
                Some(range) => {
                    let (start, end) = self.index.offsets(&self.text, range);
                    Arc::make_mut(&mut self.text).replace_range(start..end, &change.text);
                }
            }
            self.index = Arc::new(LineIndex::new(&self.text));
        }
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp_server::ls_types::{Position, Range};

    fn edit(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range {
                start: Position {
                    line: l0,
                    character: c0,
                },
                end: Position {
                    line: l1,
                    character: c1,
                },
            }),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn incremental_and_full_changes() {
        let mut d = Document::new(1, "let a = 1\nlet é = 2\n".into());
        d.apply(2, vec![edit(1, 4, 1, 5, "bb"), edit(0, 8, 0, 9, "10")]);
        assert_eq!(d.text.as_str(), "let a = 10\nlet bb = 2\n");
        assert_eq!(d.version, 2);
        d.apply(
            3,
            vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: "x".into(),
            }],
        );
        assert_eq!(d.text.as_str(), "x");
        // Out of range: appended at the end instead of a panic.
        d.apply(4, vec![edit(9, 9, 12, 0, "!")]);
        assert_eq!(d.text.as_str(), "x!");
    }
}
