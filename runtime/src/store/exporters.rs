//! How each service's exporter delivers: per `service.name`, when its batches arrive and how far
//! behind its spans' end times they are. Arrival facts, not span interpretation: the trace
//! judge ([`crate::run::completion`]) turns a service's *cadence* (its export period) into the
//! quiet window a verdict waits for.
//!
//! Estimate: an OpenTelemetry batch span processor exports on a timer every `D` (5 s by default),
//! so a span waits in its queue at most `D`: the oldest span of a batch shows the lag
//! `arrival − end` (≤ `D` when clocks agree and the exporter was not retrying), and consecutive
//! batches are a multiple of `D` apart (exactly `D` when spans kept coming). Two SDK habits bend
//! the evidence: Node's processor starts its timer at the first span after an export (every
//! batch's oldest span lags by the whole period), and a batch that waited for a receiver to come
//! up (a service started before tbt) carries spans far older than one period.
//!
//! - **Measured** (two batches or more): `max(lag, min(smallest gap, 4 × lag))`, where `lag` is
//!   the largest lag no longer than the smallest gap (a lag beyond a gap is a backlog, not the
//!   period), capped at [`MAX_CADENCE`]: lags alone underestimate (a span that ended just
//!   before the tick waited little), the smallest gap alone overestimates an idle service (its
//!   batches are many periods apart), and a gap far beyond every lag is idleness.
//! - **First batch** (one batch, no gap yet): `4 × lag`, but never above [`FIRST_CAP`], the SDKs'
//!   default period: one lag is uniform in `[0, D]` for a timer exporter, so four reach `D`
//!   unless the span ended in the last fifth — and a large lag is as likely a backlog or Node's
//!   whole-period timer as a long period.
//! - **Declared**: a service tbt started with a known `OTEL_BSP_SCHEDULE_DELAY`
//!   ([`Exporters::declare`]) is not estimated.
//!
//! A lag from a clock ahead of ours (the span ended "in the future") is not counted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples kept per service.
pub const SAMPLES: usize = 16;
/// No cadence estimate exceeds this (a batch seen after a long pause says nothing about it).
pub const MAX_CADENCE: Duration = Duration::from_secs(30);
/// No estimate from a single batch exceeds this: the OpenTelemetry SDKs' default batch delay.
pub const FIRST_CAP: Duration = Duration::from_secs(5);

/// An export period and the evidence for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// The period.
    pub period: Duration,
    /// How it is known.
    pub basis: Basis,
}

/// How an export period is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// tbt started the service with this period.
    Declared,
    /// From this many batches of this run (two or more: their gaps bound it).
    Measured(usize),
    /// From one batch's lag (four lags, at most [`FIRST_CAP`]).
    FirstBatch,
    /// Measured in an earlier run of the same suite (`.tbt/completion.json`).
    Remembered,
}

impl Basis {
    /// True when batches bound the period (declared, measured now or before); false for a
    /// one-batch guess.
    pub fn is_measured(self) -> bool {
        !matches!(self, Basis::FirstBatch)
    }

    /// How it was estimated, in a few words.
    pub fn describe(self) -> String {
        match self {
            Basis::Declared => "declared by its service block".into(),
            Basis::Measured(n) => format!("measured from {n} batches"),
            Basis::FirstBatch => "guessed from its first batch".into(),
            Basis::Remembered => "remembered from an earlier run".into(),
        }
    }
}

#[derive(Default)]
struct Service {
    last_batch: Option<Instant>,
    batches: usize,
    lags: VecDeque<Duration>,
    gaps: VecDeque<Duration>,
    declared: Option<Duration>,
}

impl Service {
    fn cadence(&self) -> Option<Cadence> {
        if let Some(d) = self.declared {
            return Some(Cadence {
                period: d,
                basis: Basis::Declared,
            });
        }
        let gap = self.gaps.iter().copied().min();
        let Some(g) = gap else {
            let l = self.lags.iter().copied().max()?;
            return Some(Cadence {
                period: (l * 4).min(FIRST_CAP),
                basis: Basis::FirstBatch,
            });
        };
        // A lag beyond the smallest gap waited through more than one period: a backlog.
        let lag = self.lags.iter().copied().filter(|&l| l <= g).max();
        let period = match lag {
            Some(l) => l.max(g.min(l * 4)),
            None => g,
        };
        Some(Cadence {
            period: period.min(MAX_CADENCE),
            basis: Basis::Measured(self.batches),
        })
    }
}

fn push(q: &mut VecDeque<Duration>, d: Duration) {
    if q.len() == SAMPLES {
        q.pop_front();
    }
    q.push_back(d.min(MAX_CADENCE));
}

/// The per-service exporter log. Cheap to clone: clones share the log.
#[derive(Clone, Default)]
pub struct Exporters {
    services: Arc<Mutex<HashMap<Arc<str>, Service>>>,
}

impl std::fmt::Debug for Exporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.cadences()).finish()
    }
}

impl Exporters {
    /// Records a batch of `service` arriving at `now` (wall clock `now_unix_nanos`), whose oldest
    /// span ended at `oldest_end_unix_nanos` (0: unknown).
    pub fn observe(
        &self,
        service: &str,
        now: Instant,
        now_unix_nanos: u64,
        oldest_end_unix_nanos: u64,
    ) {
        let mut map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match map.get_mut(service) {
            Some(e) => e,
            None => map.entry(Arc::from(service)).or_default(),
        };
        if oldest_end_unix_nanos > 0 && oldest_end_unix_nanos <= now_unix_nanos {
            push(
                &mut entry.lags,
                Duration::from_nanos(now_unix_nanos - oldest_end_unix_nanos),
            );
        }
        if let Some(prev) = entry.last_batch {
            push(&mut entry.gaps, now.saturating_duration_since(prev));
        }
        entry.last_batch = Some(now);
        entry.batches += 1;
    }

    /// Declares the export period of `service` (a service tbt started with a known
    /// `OTEL_BSP_SCHEDULE_DELAY`): it is used instead of an estimate.
    pub fn declare(&self, service: &str, cadence: Duration) {
        let mut map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(Arc::from(service)).or_default().declared = Some(cadence);
    }

    /// The estimated export period of `service`, once a batch was seen.
    pub fn cadence(&self, service: &str) -> Option<Cadence> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.get(service)?.cadence()
    }

    /// Every service with an estimate, sorted by name.
    pub fn cadences(&self) -> Vec<(String, Cadence)> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, Cadence)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.cadence()?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn period(e: &Exporters, service: &str) -> Option<Duration> {
        e.cadence(service).map(|c| c.period)
    }

    #[test]
    fn a_timer_exporter_is_estimated_from_lags_and_gaps() {
        let e = Exporters::default();
        let t0 = Instant::now();
        // Batches every 1 s; the oldest span of each waited 600 ms, 400 ms, 700 ms: the lags
        // alone say 700 ms, the gaps say 1 s.
        for (i, lag) in [600u64, 400, 700].into_iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64);
            let unix = 10_000 * MS + i as u64 * 1000 * MS;
            e.observe("a", now, unix, unix - lag * MS);
        }
        assert_eq!(
            e.cadence("a"),
            Some(Cadence {
                period: Duration::from_secs(1),
                basis: Basis::Measured(3)
            })
        );
        assert_eq!(e.cadence("b"), None);
    }

    #[test]
    fn one_batch_is_four_lags_until_a_gap_bounds_it() {
        let e = Exporters::default();
        let t0 = Instant::now();
        let unix = 10_000 * MS;
        // A 1 s exporter whose first span ended 150 ms before its tick: the lag says 150 ms.
        e.observe("a", t0, unix, unix - 150 * MS);
        assert_eq!(
            e.cadence("a"),
            Some(Cadence {
                period: Duration::from_millis(600),
                basis: Basis::FirstBatch
            })
        );
        // The next batch, 1 s later, whose oldest span waited 700 ms: lags 700 ms, gap 1 s.
        e.observe(
            "a",
            t0 + Duration::from_secs(1),
            unix + 1000 * MS,
            unix + 300 * MS,
        );
        assert_eq!(period(&e, "a"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_first_batch_never_says_more_than_the_sdk_default() {
        let e = Exporters::default();
        let t0 = Instant::now();
        let unix = 100_000 * MS;
        // Node's processor: the timer starts at the first span, so the first batch lags by the
        // whole 5 s period — four lags would say 20 s.
        e.observe("node", t0, unix, unix - 5000 * MS);
        assert_eq!(period(&e, "node"), Some(FIRST_CAP));
        // A 5 s exporter started before the receiver: its first batch holds spans that waited
        // 12 s for a connection; the next batches come every 5 s with ordinary lags.
        e.observe("py", t0, unix, unix - 12_000 * MS);
        assert_eq!(period(&e, "py"), Some(FIRST_CAP));
        for (i, lag) in [(1u64, 2100u64), (2, 4300)] {
            let at = t0 + Duration::from_secs(5 * i);
            let now = unix + 5000 * i * MS;
            e.observe("py", at, now, now - lag * MS);
        }
        // The 12 s backlog is longer than the smallest gap: not the period.
        assert_eq!(
            e.cadence("py"),
            Some(Cadence {
                period: Duration::from_secs(5),
                basis: Basis::Measured(3)
            })
        );
    }

    #[test]
    fn an_idle_fast_exporter_is_not_taken_for_a_slow_one() {
        let e = Exporters::default();
        let t0 = Instant::now();
        // Exports every 50 ms but gets a request every 2 s: lags ≤ 50 ms, gaps 2 s.
        for i in 0..4u64 {
            let unix = 10_000 * MS + i * 2000 * MS;
            e.observe("a", t0 + Duration::from_secs(2 * i), unix, unix - 40 * MS);
        }
        assert_eq!(period(&e, "a"), Some(Duration::from_millis(160)));
        e.declare("a", Duration::from_millis(50));
        assert_eq!(
            e.cadence("a"),
            Some(Cadence {
                period: Duration::from_millis(50),
                basis: Basis::Declared
            })
        );
    }

    #[test]
    fn a_skewed_clock_is_bounded_by_the_gap_between_batches() {
        let e = Exporters::default();
        let t0 = Instant::now();
        // The service's clock is ahead: no lag counts; batches come every 100 ms.
        for i in 0..5u64 {
            let unix = 50_000 * MS + i * 100 * MS;
            e.observe(
                "a",
                t0 + Duration::from_millis(100 * i),
                unix,
                unix + 20_000 * MS,
            );
        }
        assert_eq!(period(&e, "a"), Some(Duration::from_millis(100)));
        let all = e.cadences();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "a");
        assert_eq!(all[0].1.period, Duration::from_millis(100));
    }
}
