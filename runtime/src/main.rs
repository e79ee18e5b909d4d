//! The `tbt` binary: parses the command line and hands over to [`tbt::cli`].

// The compiler allocates many small tree nodes; mimalloc halves the time spent in the allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tbt::cli::main()
}
