//! Where and how diagnostics are printed: colour choice and the three formats.

use std::io::{IsTerminal, Write};
use tbt_compiler::codespan_term::termcolor::{ColorChoice, StandardStream};
use tbt_compiler::render;
use tbt_compiler::{Diagnostic, SourceMap};

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl Color {
    fn choice(self) -> ColorChoice {
        match self {
            Color::Always => ColorChoice::Always,
            Color::Never => ColorChoice::Never,
            Color::Auto => {
                if std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                {
                    ColorChoice::Auto
                } else {
                    ColorChoice::Never
                }
            }
        }
    }
}

/// `--format` for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagFormat {
    /// Rendered like a compiler, on stderr.
    Human,
    /// A JSON array on stdout.
    Json,
    /// GitHub Actions workflow commands on stdout.
    Github,
}

/// Prints diagnostics in the chosen format.
pub fn emit(
    sources: &SourceMap,
    diags: &[Diagnostic],
    format: DiagFormat,
    color: Color,
) -> std::io::Result<()> {
    match format {
        DiagFormat::Human => {
            let stream = StandardStream::stderr(color.choice());
            let mut lock = stream.lock();
            render::render_to(&mut lock, sources, diags)?;
            lock.flush()
        }
        DiagFormat::Json => {
            let all: Vec<_> = diags.iter().map(|d| render::to_json(sources, d)).collect();
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &all)?;
            writeln!(out)
        }
        DiagFormat::Github => {
            let mut out = std::io::stdout().lock();
            out.write_all(render::render_github(sources, diags).as_bytes())
        }
    }
}

/// Diagnostics rendered like a compiler, as `emit` would print them on stderr (coloured as
/// `color` says for stderr), into a string — for `tbt run`, whose output passes through its
/// redactor before it is written.
pub fn render_human(sources: &SourceMap, diags: &[Diagnostic], color: Color) -> String {
    use tbt_compiler::codespan_term::termcolor::Buffer;
    let mut buf = match color.choice() {
        ColorChoice::Never => Buffer::no_color(),
        _ => Buffer::ansi(),
    };
    let _ = render::render_to(&mut buf, sources, diags);
    String::from_utf8_lossy(buf.as_slice()).into_owned()
}

/// Prints a one-line error about the command itself (not about a `.tbt` file).
pub fn usage_error(msg: &str, color: Color) {
    let mut stream = StandardStream::stderr(color.choice());
    use tbt_compiler::codespan_term::termcolor::{ColorSpec, WriteColor};
    let _ = stream.set_color(
        ColorSpec::new()
            .set_bold(true)
            .set_fg(Some(tbt_compiler::codespan_term::termcolor::Color::Red)),
    );
    let _ = write!(stream, "error");
    let _ = stream.reset();
    let _ = writeln!(stream, ": {msg}");
}
