//! The semantic-token legend: the token type and modifier names announced in `initialize`
//! ([`crate::features`]) and the indices the token responses use ([`crate::ide`]).
//!
//! Both read it from here so the announced legend and the encoded tokens cannot disagree.

use tbt_compiler::ide;
use tower_lsp_server::ls_types::{SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend};

/// The semantic token types of the legend: the standard LSP names of [`ide::TokenKind`], once
/// each, in first-use order.
pub(crate) fn token_types() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in ide::TokenKind::ALL {
        if !out.contains(&k.lsp_type()) {
            out.push(k.lsp_type());
        }
    }
    out
}

/// The legend announced in `initialize`: standard type names (attributes are `property`,
/// variables `variable`, matchers `macro`, …) and the modifiers of [`ide::modifiers`].
pub(crate) fn semantic_tokens_legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: token_types()
            .into_iter()
            .map(SemanticTokenType::new)
            .collect(),
        token_modifiers: ide::modifiers::NAMES
            .iter()
            .map(|n| SemanticTokenModifier::new(n))
            .collect(),
    }
}
