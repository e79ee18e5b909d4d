//! Diagnostics: one type for every phase, with stable codes from one registry.
//!
//! A [`Code`] never changes meaning once released; `docs/diagnostics.md` documents each with a
//! failing example and the fix (a test keeps the two in step). Rendering lives in
//! [`crate::render`]; this module only holds facts.

use crate::span::Span;
use serde::Serialize;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational remark.
    Note,
    /// Suspicious but not wrong; fails `tbt check` only with `--deny warnings`.
    Warning,
    /// The suite cannot run.
    Error,
}

impl Severity {
    /// Lower-case name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal, $sev:ident, $title:literal; )*) => {
        /// Stable diagnostic codes. The registry: add at the end, never renumber.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// `TBT0001`…
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => concat!("TBT", $num), )* }
            }

            /// The default severity (lints may be reconfigured).
            pub fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// A short title for documentation.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }
        }
    };
}

codes! {
    /// The parser met a token it did not expect.
    SyntaxError = "0001", Error, "syntax error";
    /// A string or interpolation is not closed.
    UnterminatedString = "0002", Error, "unterminated string";
    /// A character that starts no token.
    InvalidToken = "0003", Error, "invalid character";
    /// An unknown escape sequence in a string.
    InvalidEscape = "0004", Error, "invalid escape sequence";
    /// A number or duration that does not fit.
    InvalidNumber = "0005", Error, "invalid number";
    /// Brackets nested deeper than the parser accepts.
    NestingTooDeep = "0006", Error, "nesting too deep";
    /// The file is not UTF-8 or holds NUL bytes.
    InvalidSourceBytes = "0007", Error, "file is not valid UTF-8 text";
    /// `=` where a comparison `==` was meant.
    AssignInsteadOfEq = "0008", Error, "`=` used where `==` was meant";
    /// A name that is not defined.
    UnknownName = "0101", Error, "unknown name";
    /// A call to a function that does not exist.
    UnknownFunction = "0102", Error, "unknown function";
    /// A call with the wrong number of arguments.
    WrongArity = "0103", Error, "wrong number of arguments";
    /// Two definitions with one name in one scope.
    Duplicate = "0104", Error, "duplicate definition";
    /// An import whose file or module does not exist.
    ImportNotFound = "0105", Error, "import not found";
    /// Modules that import each other in a cycle.
    ImportCycle = "0106", Error, "import cycle";
    /// A capture reference to an unknown step or test, or a capture it does not define.
    UnknownCapture = "0107", Error, "unknown capture";
    /// A capture read before the step that defines it runs.
    CaptureBeforeDefinition = "0108", Error, "capture used before it is defined";
    /// A `trigger` kind other than http, grpc, exec, trace.
    UnknownTrigger = "0109", Error, "unknown trigger kind";
    /// An option or directive that the context does not know.
    UnknownOption = "0110", Error, "unknown option";
    /// A step (or inline test) with expectations but no trigger.
    MissingTrigger = "0111", Error, "step without a trigger";
    /// Tests that depend on each other in a cycle.
    DependencyCycle = "0112", Error, "dependency cycle between tests";
    /// A statement where it is not allowed (a step inside a step, two triggers, …).
    MisplacedStatement = "0113", Error, "statement not allowed here";
    /// A pseudo-class other than first, last, nth, root, not, has.
    UnknownPseudoClass = "0114", Error, "unknown pseudo-class";
    /// Trigger or directive arguments of the wrong shape.
    InvalidArguments = "0115", Error, "invalid arguments";
    /// An operand of the wrong type.
    TypeMismatch = "0201", Error, "type mismatch";
    /// A duration compared with (or added to) a plain number.
    DurationVsNumber = "0202", Error, "duration compared with a number";
    /// A selector was expected.
    ExpectedSelector = "0203", Error, "expected a selector";
    /// A predicate must be boolean.
    ExpectedBool = "0204", Error, "expected a boolean predicate";
    /// A regular expression literal that does not compile.
    InvalidRegex = "0205", Error, "invalid regular expression";
    /// A JSONPath literal that does not parse.
    InvalidJsonPath = "0206", Error, "invalid JSONPath";
    /// An aggregate (`count`, `sum`, …) outside an expectation block.
    MisplacedAggregate = "0207", Error, "aggregate outside an expectation block";
    /// A `let` that nothing reads.
    UnusedLet = "0301", Warning, "unused variable";
    /// A matcher that nothing calls.
    UnusedMatcher = "0302", Warning, "unused matcher";
    /// An import whose names are not used.
    UnusedImport = "0303", Warning, "unused import";
    /// An attribute name not in the semantic conventions but close to one that is.
    UnknownAttribute = "0304", Warning, "unknown OpenTelemetry attribute";
    /// An attribute the semantic conventions deprecated.
    DeprecatedAttribute = "0305", Warning, "deprecated OpenTelemetry attribute";
    /// A comparison whose outcome is known before anything runs.
    ConstantComparison = "0306", Warning, "comparison against a value the attribute cannot have";
    /// `tbt run`: an expectation did not hold on the trace (or response) its trigger caused.
    ExpectationFailed = "0401", Error, "expectation failed";
    /// `tbt run`: a step could not be carried out (trigger error, no trace, bad value).
    StepError = "0402", Error, "step could not run";
    /// `tbt run`: an expectation's spans could still arrive when its step ended (another
    /// expectation of the step had failed for good): neither passed nor failed.
    ExpectationUndecided = "0403", Warning, "expectation undecided";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A labelled source location.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What about it (may be empty).
    pub message: String,
    /// The primary label is the place of the error; secondary labels give context.
    pub primary: bool,
}

/// A machine-applicable fix: replace each span with its text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fix {
    /// What the fix does, e.g. "replace `=` with `==`".
    pub message: String,
    /// Non-overlapping replacements.
    pub edits: Vec<(Span, String)>,
}

/// One diagnostic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Stable code.
    pub code: Code,
    /// Severity (defaults to the code's, lints may be reconfigured).
    pub severity: Severity,
    /// One-line message.
    pub message: String,
    /// The first label is the primary location.
    pub labels: Vec<Label>,
    /// `= note: …` lines.
    pub notes: Vec<String>,
    /// `= help: …` lines.
    pub help: Vec<String>,
    /// Machine-applicable fixes (code actions in the editor).
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity and a primary label at `span`.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.default_severity(),
            message: message.into(),
            labels: vec![Label {
                span,
                message: String::new(),
                primary: true,
            }],
            notes: Vec::new(),
            help: Vec::new(),
            fixes: Vec::new(),
        }
    }

    /// Sets the primary label's text.
    pub fn with_label(mut self, message: impl Into<String>) -> Self {
        if let Some(l) = self.labels.first_mut() {
            l.message = message.into();
        }
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Adds a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// Adds a machine-applicable fix.
    pub fn with_fix(mut self, message: impl Into<String>, edits: Vec<(Span, String)>) -> Self {
        self.fixes.push(Fix {
            message: message.into(),
            edits,
        });
        self
    }

    /// Overrides the severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The primary location.
    pub fn span(&self) -> Span {
        self.labels
            .iter()
            .find(|l| l.primary)
            .map(|l| l.span)
            .unwrap_or_default()
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
