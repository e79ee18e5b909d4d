//! The `tbt` command line and everything that does I/O.
