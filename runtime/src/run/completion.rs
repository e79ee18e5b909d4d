//! When a step's trace is complete enough for a verdict: the [`StepJudge`] a trace node hands to
//! its source, and the [`History`] of earlier runs it draws on. The rules, as `docs/cli.md`
//! ("When a trace is complete") states them:
//!
//! 1. **No verdict on a trace that has not arrived.** The trace must hold a span, have a root, and
//!    no span may point at a parent that has not arrived. When the trigger reached a system (an
//!    HTTP or gRPC server answered, a process ran), a span other than tbt's own trigger span must
//!    be in, and every service that took part in this step's last passing run must be present.
//!    This holds for failures too: one found on tbt's span alone waits for the system's spans.
//! 2. **Expectations decide when they can.** They are evaluated on every arrival. Once the
//!    system's spans are in (rule 1), a failure more spans cannot repair (`expect no` matched, a bound exceeded, a predicate failed on a span of a
//!    growing selection) ends the step after `settle` of quiet (so the report lists the whole
//!    burst of offending spans), without waiting for completeness or exporters. A failure more spans could repair (nothing
//!    matched yet, `count >= n` short) keeps the step waiting until its timeout; when another
//!    failure ended the step first, such an expectation is undecided, with what the trace still
//!    lacked ([`StepJudge::still_missing`]). The step passes once the trace is complete, quiet,
//!    and every expectation holds.
//! 3. **Quiet long enough for the exporters seen.** Quiet means `settle` since the last arrival.
//!    When a passing expectation could still be broken by a later span (anything but `expect SEL`
//!    without a block), quiet also covers, for each service in the trace, one export period plus a
//!    margin after its last arrival in this trace ([`window`]), so a span it ends after that batch
//!    is seen — unless that batch arrived [`TAIL`] or more after the system answered the trigger:
//!    it was cut after the system's spans of that much time had ended, so the next batch could
//!    only add work that outlived the answer by more than [`TAIL`]. An HTTP/RPC client span of
//!    the system without a child extends quiet to the slowest exporter known (its peer may yet
//!    send). Export periods: measured by the receiver's exporter log this run, else remembered
//!    for the suite ([`History`]), else guessed from the service's one batch
//!    ([`crate::store::exporters`]).

use super::source::{Decision, Judge, Observation};
use crate::store::exporters::Cadence;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tbt_compiler::trace::{SpanKind, Trace};

/// The file, under `.tbt/`, that remembers exporters and step shapes between runs.
pub const FILE: &str = "completion.json";

/// The wait for a service's next batch: its export period plus a tenth of it, at least 50 ms
/// and at most 250 ms, for the jitter of its timer, its export call and the transport (which do
/// not grow with the period).
pub fn window(cadence: Duration) -> Duration {
    cadence + (cadence / 10).clamp(Duration::from_millis(50), Duration::from_millis(250))
}

/// How long after answering the trigger a system may still end spans of its trace (background
/// work, a queue consumer) and be waited for without a `settle`: a service's batch that arrived
/// this long after the answer already holds them, so its next export period is not waited for.
/// Otherwise its next batch is: `window(period)` after the last one.
pub const TAIL: Duration = Duration::from_millis(500);

/// True for tbt's own trigger spans (resource and scope `tbt`).
pub fn is_tbt(trace: &Trace, index: u32) -> bool {
    let span = trace.span(index);
    &**trace.service(index) == "tbt"
        && trace
            .scopes()
            .get(span.scope as usize)
            .is_some_and(|s| &*s.name == "tbt")
}

/// What earlier runs taught: exporters' periods, per suite, and which services each step's
/// passing trace held.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Per suite file, per service of its steps' traces: the export period measured (two
    /// batches or more, or declared), in milliseconds. Scoped to the suite so an unrelated
    /// exporter sending to the same receiver leaves nothing for other suites to wait for.
    #[serde(default)]
    pub periods: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per step label (`test.step`): the services of its last passing trace (tbt excluded).
    #[serde(default)]
    pub steps: BTreeMap<String, Vec<String>>,
}

impl History {
    /// Reads `ROOT/.tbt/completion.json`; a missing or unreadable file is an empty history (it is
    /// a cache: the run is right without it, only slower to learn).
    pub fn load(root: &Path) -> History {
        let path = root.join(tbt_compiler::ide::last_run::DIR).join(FILE);
        std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes it atomically next to `last-run.json`.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let dir = root.join(tbt_compiler::ide::last_run::DIR);
        std::fs::create_dir_all(&dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# written by tbt run: local editor data\n*\n")?;
        }
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// The export period of `service` remembered for `suite`.
    pub fn period(&self, suite: &str, service: &str) -> Option<Duration> {
        self.periods
            .get(suite)?
            .get(service)
            .map(|&ms| Duration::from_millis(ms))
    }

    /// Remembers a measured period: it replaces the old one, shorter or longer (a service made
    /// faster is waited for less at once, not after fading).
    pub fn remember(&mut self, suite: &str, service: &str, period: Duration) {
        self.periods
            .entry(suite.to_owned())
            .or_default()
            .insert(service.to_owned(), period.as_millis() as u64);
    }
}

/// Why a step stopped waiting for its trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Stop {
    /// Complete, quiet, every expectation held.
    Settled {
        /// Quiet time before the verdict (since the last arrival), in milliseconds.
        quiet_ms: u64,
        /// The service whose export period set the quiet window, when one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        waited_for: Option<String>,
        /// That period, in milliseconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        cadence_ms: Option<u64>,
        /// How that period is known (`measured from 3 batches`, `guessed from its first batch`…).
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated: Option<String>,
    },
    /// An expectation failed in a way more spans cannot repair.
    Decided,
    /// The timeout passed.
    Timeout {
        /// What the wait was still waiting for.
        waiting_for: String,
    },
    /// The trace came from a file: all there is.
    Offline,
}

impl Stop {
    /// One line for `-v`.
    pub fn describe(&self) -> String {
        match self {
            Stop::Settled {
                quiet_ms,
                waited_for: Some(s),
                cadence_ms: Some(c),
                estimated,
            } => format!(
                "settled after {quiet_ms}ms quiet (waited for `{s}`, which exports every ~{c}ms{})",
                estimated
                    .as_deref()
                    .map_or(String::new(), |e| format!(", {e}"))
            ),
            Stop::Settled { quiet_ms, .. } => {
                format!("settled after {quiet_ms}ms quiet; all expectations held")
            }
            Stop::Decided => "an expectation failed that more spans cannot repair".to_string(),
            Stop::Timeout { waiting_for } => format!("timeout, waiting for {waiting_for}"),
            Stop::Offline => "read from a file: all there is".to_string(),
        }
    }
}

/// The expectations' state on one view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every expectation holds.
    pub passed: bool,
    /// Some failure cannot be repaired by more spans.
    pub decided_failure: bool,
    /// Every passing expectation stays passing whatever arrives.
    pub lasting: bool,
}

/// Evaluates the step's expectations on a view.
pub type Evaluate<'a> = Box<dyn FnMut(&Trace) -> Verdict + Send + 'a>;

/// A service's export period, when known.
pub type CadenceOf<'a> = Box<dyn Fn(&str) -> Option<Cadence> + Send + Sync + 'a>;

/// Per service of the trace: spans seen and when their number last grew.
struct Seen {
    spans: usize,
    last: Instant,
}

/// Judges one step's trace: see the module docs.
pub struct StepJudge<'a> {
    evaluate: Evaluate<'a>,
    reached_system: bool,
    answered: Option<Instant>,
    settle: Duration,
    expected: &'a [String],
    cadence: CadenceOf<'a>,
    slowest: Option<(String, Cadence)>,
    services: HashMap<Arc<str>, Seen>,
    evaluated: Option<(usize, Verdict)>,
    /// Why it stopped (set with [`Decision::Done`]).
    pub stop: Option<Stop>,
    /// What it waits for now (for the timeout message).
    pub waiting_for: String,
}

impl<'a> StepJudge<'a> {
    /// A judge for a step whose trigger `reached_system`; `expected` are the services of its last
    /// passing run; `cadence` gives a service's export period; `slowest` is the slowest exporter
    /// known (for client spans whose peer has not sent).
    pub fn new(
        evaluate: Evaluate<'a>,
        reached_system: bool,
        settle: Duration,
        expected: &'a [String],
        cadence: CadenceOf<'a>,
        slowest: Option<(String, Cadence)>,
    ) -> Self {
        StepJudge {
            evaluate,
            reached_system,
            answered: None,
            settle,
            expected,
            cadence,
            slowest,
            services: HashMap::new(),
            evaluated: None,
            stop: None,
            waiting_for: "the first span".to_string(),
        }
    }

    /// When the system answered the trigger (see [`TAIL`]).
    pub fn answered_at(mut self, at: Instant) -> Self {
        self.answered = Some(at);
        self
    }

    fn wait(&mut self, what: impl Into<String>, at: Option<Instant>) -> Decision {
        self.waiting_for = what.into();
        Decision::Wait(at)
    }
}

impl Judge for StepJudge<'_> {
    fn observe(&mut self, now: Instant, seen: &Observation<'_>) -> Decision {
        let trace = seen.trace;
        if seen.final_view {
            self.stop = Some(Stop::Offline);
            return Decision::Done;
        }
        // Per-service arrivals (tbt's own span excluded).
        let arrival = seen.last_arrival.unwrap_or(now);
        let mut counts: HashMap<&Arc<str>, usize> = HashMap::new();
        for i in 0..trace.len() as u32 {
            if !is_tbt(trace, i) {
                *counts.entry(trace.service(i)).or_default() += 1;
            }
        }
        for (service, n) in &counts {
            match self.services.get_mut(&***service) {
                Some(s) if s.spans == *n => {}
                Some(s) => {
                    s.spans = *n;
                    s.last = arrival;
                }
                None => {
                    self.services.insert(
                        Arc::clone(service),
                        Seen {
                            spans: *n,
                            last: arrival,
                        },
                    );
                }
            }
        }
        let verdict = match self.evaluated {
            Some((n, v)) if n == trace.len() => v,
            _ => {
                let v = (self.evaluate)(trace);
                self.evaluated = Some((trace.len(), v));
                v
            }
        };
        // Rule 1, for failures as for passes: nothing is decided on a trace that has not arrived.
        // A failure on tbt's own span alone waits for the system's spans, so it is judged (and
        // reported) on what the system did.
        if trace.is_empty() {
            return self.wait("the first span", None);
        }
        if self.reached_system && counts.is_empty() {
            return self.wait("the system's spans (only tbt's own span arrived)", None);
        }
        if verdict.decided_failure {
            // The verdict is in; wait only for `settle` of quiet so the report lists every
            // offending span of this burst, not whichever arrived first.
            let quiet = seen.last_arrival.map(|l| l + self.settle);
            return match quiet {
                Some(q) if q > now => {
                    self.wait("quiet before reporting a decided failure", Some(q))
                }
                _ => {
                    self.stop = Some(Stop::Decided);
                    Decision::Done
                }
            };
        }
        if let Some(what) = self.incomplete(trace) {
            return self.wait(what, None);
        }
        let last = seen.last_arrival.unwrap_or(now);
        let (quiet_until, waited_for) = self.quiet_until(trace, last, verdict.lasting);
        if now < quiet_until {
            let what = match &waited_for {
                Some((s, c)) => format!(
                    "quiet until `{s}`'s next export (every ~{}ms, {})",
                    c.period.as_millis(),
                    c.basis.describe()
                ),
                None => "quiet".to_string(),
            };
            return self.wait(what, Some(quiet_until));
        }
        if verdict.passed {
            self.stop = Some(Stop::Settled {
                quiet_ms: now.saturating_duration_since(last).as_millis() as u64,
                cadence_ms: waited_for
                    .as_ref()
                    .map(|(_, c)| c.period.as_millis() as u64),
                estimated: waited_for.as_ref().map(|(_, c)| c.basis.describe()),
                waited_for: waited_for.map(|(s, _)| s),
            });
            return Decision::Done;
        }
        self.wait("spans that would make the failing expectations hold", None)
    }
}

impl StepJudge<'_> {
    /// What rule 1 still lacks on `trace` beyond the system's first span: a root, parents that
    /// have not arrived, services of the step's last passing run.
    fn incomplete(&self, trace: &Trace) -> Option<String> {
        if trace.roots().is_empty() || !trace.orphans().is_empty() {
            let n = trace.orphans().len();
            return Some(format!(
                "the parents of {} span{} that have not arrived",
                n,
                if n == 1 { "" } else { "s" }
            ));
        }
        let missing: Vec<String> = self
            .expected
            .iter()
            .filter(|s| !self.services.contains_key(s.as_str()))
            .map(|s| format!("`{s}`"))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "spans of {} (in this step's last passing trace)",
                missing.join(", ")
            )
        })
    }

    /// Until when rule 3's quiet lasts after the `last` arrival, and the service whose export
    /// period set it (none when `settle` did).
    fn quiet_until(
        &self,
        trace: &Trace,
        last: Instant,
        lasting: bool,
    ) -> (Instant, Option<(String, Cadence)>) {
        let mut quiet_until = last + self.settle;
        let mut waited_for: Option<(String, Cadence)> = None;
        if !lasting {
            for (service, s) in &self.services {
                if self.answered.is_some_and(|a| s.last >= a + TAIL) {
                    // This batch was cut after TAIL of the system's work had ended.
                    continue;
                }
                if let Some(c) = (self.cadence)(service) {
                    let at = s.last + window(c.period);
                    if at > quiet_until {
                        quiet_until = at;
                        waited_for = Some((service.to_string(), c));
                    }
                }
            }
            if let Some((slow, c)) = &self.slowest
                && open_client_call(trace)
            {
                let at = last + window(c.period);
                if at > quiet_until {
                    quiet_until = at;
                    waited_for = Some((slow.clone(), *c));
                }
            }
        }
        (quiet_until, waited_for)
    }

    /// Why the step's other failing expectations are undecided when it ended at `now` on a
    /// decided failure: what a pass would still have waited for on `trace` (rules 1 and 3).
    pub fn still_missing(&self, trace: &Trace, last: Option<Instant>, now: Instant) -> String {
        if let Some(what) = self.incomplete(trace) {
            return what;
        }
        let (until, waited_for) = self.quiet_until(trace, last.unwrap_or(now), false);
        match waited_for {
            Some((s, c)) if until > now => format!(
                "`{s}`'s next export (every ~{}ms, {}), due {}ms later",
                c.period.as_millis(),
                c.basis.describe(),
                until.duration_since(now).as_millis()
            ),
            _ => "spans the step stopped waiting for when another expectation failed".to_string(),
        }
    }
}

/// True when the system made an HTTP or RPC client call whose peer sent nothing (yet).
fn open_client_call(trace: &Trace) -> bool {
    let http = ["http.request.method", "http.method", "rpc.system"];
    (0..trace.len() as u32).any(|i| {
        trace.span(i).kind == SpanKind::Client
            && !is_tbt(trace, i)
            && trace.children(i).is_empty()
            && http.iter().any(|k| trace.attr_by_name(i, k).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::exporters::Basis;

    fn trace(json: &str) -> Trace {
        Trace::from_otlp_json(json, None).expect("trace")
    }

    /// A trace of tbt's root span and, optionally, a server span of `svc` under it.
    fn doc(with_system: bool) -> String {
        let tbt = r#"{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"tbt"}}]},
            "scopeSpans":[{"scope":{"name":"tbt"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c",
            "spanId":"00f067aa0ba902b7","name":"GET","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}"#;
        let svc = r#",{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
            "scopeSpans":[{"scope":{"name":"flask"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c",
            "spanId":"00f067aa0ba902b8","parentSpanId":"00f067aa0ba902b7","name":"GET /","kind":2,
            "startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}"#;
        format!(
            r#"{{"resourceSpans":[{tbt}{}]}}"#,
            if with_system { svc } else { "" }
        )
    }

    fn judge<'a>(
        verdict: Verdict,
        expected: &'a [String],
        cadence: Option<Duration>,
    ) -> StepJudge<'a> {
        StepJudge::new(
            Box::new(move |_| verdict),
            true,
            Duration::from_millis(100),
            expected,
            Box::new(move |_| {
                cadence.map(|period| Cadence {
                    period,
                    basis: Basis::Measured(2),
                })
            }),
            None,
        )
    }

    const PASS: Verdict = Verdict {
        passed: true,
        decided_failure: false,
        lasting: false,
    };

    fn at(t: &Trace, last: Instant) -> Observation<'_> {
        Observation {
            trace: t,
            last_arrival: Some(last),
            final_view: false,
        }
    }

    #[test]
    fn only_tbts_own_span_is_not_a_complete_trace() {
        let t = trace(&doc(false));
        let t0 = Instant::now();
        let mut j = judge(PASS, &[], None);
        let long_after = t0 + Duration::from_secs(10);
        assert_eq!(j.observe(long_after, &at(&t, t0)), Decision::Wait(None));
        assert!(
            j.waiting_for.contains("only tbt's own span"),
            "{}",
            j.waiting_for
        );
        let t = trace(&doc(true));
        assert_eq!(
            j.observe(t0, &at(&t, t0)),
            Decision::Wait(Some(t0 + Duration::from_millis(100)))
        );
        assert_eq!(
            j.observe(t0 + Duration::from_millis(100), &at(&t, t0)),
            Decision::Done
        );
        assert!(matches!(j.stop, Some(Stop::Settled { .. })));
    }

    #[test]
    fn a_breakable_pass_waits_one_export_period_of_each_service() {
        let t = trace(&doc(true));
        let t0 = Instant::now();
        let mut j = judge(PASS, &[], Some(Duration::from_secs(1)));
        let until = t0 + window(Duration::from_secs(1));
        assert_eq!(j.observe(t0, &at(&t, t0)), Decision::Wait(Some(until)));
        assert!(j.waiting_for.contains("`svc`"), "{}", j.waiting_for);
        assert_eq!(j.observe(until, &at(&t, t0)), Decision::Done);
        assert_eq!(
            j.stop,
            Some(Stop::Settled {
                quiet_ms: window(Duration::from_secs(1)).as_millis() as u64,
                waited_for: Some("svc".into()),
                cadence_ms: Some(1000),
                estimated: Some("measured from 2 batches".into()),
            })
        );
        // A lasting pass does not wait for the exporter.
        let mut j = judge(
            Verdict {
                lasting: true,
                ..PASS
            },
            &[],
            Some(Duration::from_secs(1)),
        );
        assert_eq!(
            j.observe(t0, &at(&t, t0)),
            Decision::Wait(Some(t0 + Duration::from_millis(100)))
        );
    }

    #[test]
    fn a_batch_that_came_a_tail_after_the_answer_is_not_followed_by_a_period_of_quiet() {
        let t = trace(&doc(true));
        let answered = Instant::now();
        let five = Some(Duration::from_secs(5));
        // A 5 s exporter whose batch came 4.7 s after the answer: settle, not another period.
        let batch = answered + Duration::from_millis(4700);
        let mut j = judge(PASS, &[], five).answered_at(answered);
        let settled = batch + Duration::from_millis(100);
        assert_eq!(
            j.observe(batch, &at(&t, batch)),
            Decision::Wait(Some(settled))
        );
        assert_eq!(j.observe(settled, &at(&t, batch)), Decision::Done);
        // Its batch came 300 ms after the answer: work ending up to TAIL after the answer may be
        // in the next one.
        let batch = answered + Duration::from_millis(300);
        let mut j = judge(PASS, &[], five).answered_at(answered);
        let until = batch + window(Duration::from_secs(5));
        assert_eq!(
            j.observe(batch, &at(&t, batch)),
            Decision::Wait(Some(until))
        );
        assert!(j.waiting_for.contains("`svc`"), "{}", j.waiting_for);
    }

    #[test]
    fn failures_wait_unless_decided_and_history_names_missing_services() {
        let t = trace(&doc(true));
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let mut j = judge(Verdict::default(), &[], None);
        assert_eq!(j.observe(later, &at(&t, t0)), Decision::Wait(None));
        let mut j = judge(
            Verdict {
                decided_failure: true,
                ..Verdict::default()
            },
            &[],
            None,
        );
        // Not on tbt's own span alone: the system's spans are waited for.
        let own = trace(&doc(false));
        assert_eq!(j.observe(later, &at(&own, t0)), Decision::Wait(None));
        assert!(
            j.waiting_for.contains("only tbt's own span"),
            "{}",
            j.waiting_for
        );
        let quiet = t0 + Duration::from_millis(100);
        assert_eq!(j.observe(t0, &at(&t, t0)), Decision::Wait(Some(quiet)));
        assert_eq!(j.observe(quiet, &at(&t, t0)), Decision::Done);
        assert_eq!(j.stop, Some(Stop::Decided));
        let expected = vec!["svc".to_string(), "db".to_string()];
        let mut j = judge(PASS, &expected, None);
        assert_eq!(j.observe(later, &at(&t, t0)), Decision::Wait(None));
        assert!(j.waiting_for.contains("`db`"), "{}", j.waiting_for);
    }

    #[test]
    fn an_early_end_says_what_the_trace_still_lacked() {
        let t0 = Instant::now();
        // A span whose parent has not arrived.
        let orphan = trace(&doc(true).replace(
            r#""parentSpanId":"00f067aa0ba902b7""#,
            r#""parentSpanId":"00f067aa0ba90299""#,
        ));
        let j = judge(PASS, &[], None);
        assert_eq!(
            j.still_missing(&orphan, Some(t0), t0),
            "the parents of 1 span that have not arrived"
        );
        // Complete, but the service's next export was due: it names the exporter.
        let t = trace(&doc(true));
        let mut j = judge(PASS, &[], Some(Duration::from_secs(1)));
        let _ = j.observe(t0, &at(&t, t0));
        let said = j.still_missing(&t, Some(t0), t0 + Duration::from_millis(200));
        assert!(
            said.starts_with("`svc`'s next export (every ~1000ms, measured from 2 batches)"),
            "{said}"
        );
        // A service of the last passing run that sent nothing.
        let expected = vec!["db".to_string()];
        let mut j = judge(PASS, &expected, None);
        let _ = j.observe(t0, &at(&t, t0));
        assert!(
            j.still_missing(&t, Some(t0), t0).contains("`db`"),
            "{}",
            j.still_missing(&t, Some(t0), t0)
        );
    }

    #[test]
    fn history_round_trips_and_a_broken_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("tbt-completion-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(History::load(&dir), History::default());
        let mut h = History::default();
        h.remember("a.tbt", "svc", Duration::from_secs(5));
        h.steps.insert("t.s".into(), vec!["svc".into()]);
        h.save(&dir).expect("saved");
        assert_eq!(History::load(&dir), h);
        assert_eq!(h.period("a.tbt", "svc"), Some(Duration::from_secs(5)));
        // Scoped to the suite that saw it.
        assert_eq!(h.period("b.tbt", "svc"), None);
        // A shorter measurement replaces a longer one at once.
        h.remember("a.tbt", "svc", Duration::from_secs(1));
        assert_eq!(h.period("a.tbt", "svc"), Some(Duration::from_secs(1)));
        // A file of the format before suites scoped periods reads as steps only.
        std::fs::write(
            dir.join(".tbt").join(FILE),
            r#"{"cadence_ms":{"svc":20000},"steps":{"t.s":["svc"]}}"#,
        )
        .expect("write");
        let old = History::load(&dir);
        assert!(old.periods.is_empty());
        assert_eq!(old.steps.len(), 1);
        std::fs::write(dir.join(".tbt").join(FILE), "{not json").expect("write");
        assert_eq!(History::load(&dir), History::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
