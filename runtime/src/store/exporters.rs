//! How each service's exporter delivers: per `service.name`, when its batches arrive and how far
//! behind its spans' end times they are. Arrival facts, not span interpretation: the trace
//! judge ([`crate::run::completion`]) turns a service's *cadence* (its export period) into the
//! quiet window a verdict waits for.
//!
//! Estimate: an OpenTelemetry batch span processor exports on a timer every `D` (5 s by default),
//! so a span waits in its queue at most `D`: the oldest span of a batch shows the lag
//! `arrival − end` (≤ `D` when clocks agree), and consecutive batches are a multiple of `D` apart
//! (exactly `D` when spans kept coming). The cadence is
//! `max(largest lag, min(smallest gap, 4 × largest lag))` over the last [`SAMPLES`] batches,
//! capped at [`MAX_CADENCE`], and `4 × lag` after a single batch (no gap yet): lags alone
//! underestimate (a span that ended just before the tick waited little), the smallest gap alone
//! overestimates an idle service (its batches are many periods apart), and a gap far beyond every
//! lag is idleness, not the period. A lag from a clock
//! ahead of ours (the span ended "in the future") is not counted. A service whose period is known
//! (one tbt started, with the `OTEL_BSP_SCHEDULE_DELAY` it was given) is [`Exporters::declare`]d
//! and not estimated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples kept per service.
pub const SAMPLES: usize = 16;
/// No cadence estimate exceeds this (a batch seen after a long pause says nothing about it).
pub const MAX_CADENCE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Service {
    last_batch: Option<Instant>,
    lags: VecDeque<Duration>,
    gaps: VecDeque<Duration>,
    declared: Option<Duration>,
}

impl Service {
    fn cadence(&self) -> Option<Duration> {
        if let Some(d) = self.declared {
            return Some(d);
        }
        let lag = self.lags.iter().copied().max();
        let gap = self.gaps.iter().copied().min();
        let c = match (lag, gap) {
            (Some(l), Some(g)) => l.max(g.min(l * 4)),
            // One batch: no gap bounds the period yet, and its lag is uniform in [0, period]
            // (when the span ended within the period), so the lag alone is short of the period
            // half the time; four lags reach it unless the span ended in the last fifth.
            (Some(l), None) => l * 4,
            (None, g) => g?,
        };
        Some(c.min(MAX_CADENCE))
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
    }

    /// Declares the export period of `service` (a service tbt started with a known
    /// `OTEL_BSP_SCHEDULE_DELAY`): it is used instead of an estimate.
    pub fn declare(&self, service: &str, cadence: Duration) {
        let mut map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(Arc::from(service)).or_default().declared = Some(cadence);
    }

    /// The estimated export period of `service`, once a batch was seen.
    pub fn cadence(&self, service: &str) -> Option<Duration> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.get(service)?.cadence()
    }

    /// Every service with an estimate, sorted by name.
    pub fn cadences(&self) -> Vec<(String, Duration)> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, Duration)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.cadence()?)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

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
        assert_eq!(e.cadence("a"), Some(Duration::from_secs(1)));
        assert_eq!(e.cadence("b"), None);
    }

    #[test]
    fn one_batch_is_four_lags_until_a_gap_bounds_it() {
        let e = Exporters::default();
        let t0 = Instant::now();
        let unix = 10_000 * MS;
        // A 1 s exporter whose first span ended 150 ms before its tick: the lag says 150 ms.
        e.observe("a", t0, unix, unix - 150 * MS);
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(600)));
        // The next batch, 1 s later, whose oldest span waited 700 ms: lags 700 ms, gap 1 s.
        e.observe(
            "a",
            t0 + Duration::from_secs(1),
            unix + 1000 * MS,
            unix + 300 * MS,
        );
        assert_eq!(e.cadence("a"), Some(Duration::from_secs(1)));
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
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(160)));
        e.declare("a", Duration::from_millis(50));
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(50)));
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
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(100)));
        assert_eq!(
            e.cadences(),
            vec![("a".to_string(), Duration::from_millis(100))]
        );
    }
}
