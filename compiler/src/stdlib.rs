//! The standard library: `.tbt` modules compiled into the binary.
//!
//! `import "std/http"` never touches the file system: the module text is embedded here at build
//! time from the repository's `stdlib/` folder. The modules are ordinary `.tbt` files, checked by
//! the same compiler, documented by their `##` comments.

/// `(import path, source text)` of every standard module.
pub const MODULES: &[(&str, &str)] = &[
    ("std/http", include_str!("../../stdlib/http.tbt")),
    ("std/db", include_str!("../../stdlib/db.tbt")),
    ("std/rpc", include_str!("../../stdlib/rpc.tbt")),
    ("std/messaging", include_str!("../../stdlib/messaging.tbt")),
    ("std/errors", include_str!("../../stdlib/errors.tbt")),
];

/// The source of a standard module, by import path (`std/http`).
pub fn module(path: &str) -> Option<&'static str> {
    MODULES.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
}
