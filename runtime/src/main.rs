//! The `tbt` binary: parses the command line and hands over to [`tbt::cli`].

fn main() -> std::process::ExitCode {
    tbt::cli::main()
}
