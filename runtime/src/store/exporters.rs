//! How each service's exporter delivers: per `service.name`, when its batches arrive and how far
//! behind its spans' end times they are. Arrival facts, not span interpretation: the trace
//! judge ([`crate::run::completion`]) turns a service's *cadence* (its export period) into the
//! quiet window a verdict waits for.
//!
//! Estimate: an OpenTelemetry batch span processor exports every `D` (5 s by default), so a
//! span waits in its queue at most `D`; the oldest span of a batch shows the lag
//! `arrival − end` (≤ `D`, larger when clocks disagree), and the gap since the service's previous
//! batch is ≥ `D` when it exports on its timer. Each batch gives the sample
//! `min(lag of its oldest span, gap since the previous batch)` — the gap bounds a lag inflated by
//! clock skew, the lag bounds a gap inflated by idle time — and the cadence is the largest of
//! the last [`SAMPLES`] samples, capped at [`MAX_CADENCE`]. A batch whose oldest span ended in the
//! future (a clock ahead of ours) gives no lag; then the gap alone, if known, is the sample.

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
    samples: VecDeque<Duration>,
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
        let lag = (oldest_end_unix_nanos > 0 && oldest_end_unix_nanos <= now_unix_nanos)
            .then(|| Duration::from_nanos(now_unix_nanos - oldest_end_unix_nanos));
        let gap = entry
            .last_batch
            .map(|prev| now.saturating_duration_since(prev));
        let sample = match (lag, gap) {
            (Some(l), Some(g)) => Some(l.min(g)),
            (Some(l), None) => Some(l),
            (None, g) => g,
        };
        entry.last_batch = Some(now);
        if let Some(s) = sample {
            if entry.samples.len() == SAMPLES {
                entry.samples.pop_front();
            }
            entry.samples.push_back(s.min(MAX_CADENCE));
        }
    }

    /// The estimated export period of `service`, once a batch was seen.
    pub fn cadence(&self, service: &str) -> Option<Duration> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.get(service)?.samples.iter().copied().max()
    }

    /// Every service with an estimate, sorted by name.
    pub fn cadences(&self) -> Vec<(String, Duration)> {
        let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, Duration)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.samples.iter().copied().max()?)))
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
    fn a_timer_exporter_is_estimated_by_the_lag_of_its_oldest_span() {
        let e = Exporters::default();
        let t0 = Instant::now();
        // Batches every 1 s; the oldest span of each waited 900 ms, 400 ms, 950 ms.
        for (i, lag) in [900u64, 400, 950].into_iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64);
            let unix = 10_000 * MS + i as u64 * 1000 * MS;
            e.observe("a", now, unix, unix - lag * MS);
        }
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(950)));
        assert_eq!(e.cadence("b"), None);
    }

    #[test]
    fn a_skewed_clock_is_bounded_by_the_gap_between_batches() {
        let e = Exporters::default();
        let t0 = Instant::now();
        // The service's clock is 20 s behind: every lag looks like 20 s; batches come every 100 ms.
        for i in 0..5u64 {
            let unix = 50_000 * MS + i * 100 * MS;
            e.observe(
                "a",
                t0 + Duration::from_millis(100 * i),
                unix,
                unix - 20_000 * MS,
            );
        }
        // The first batch has no gap: its sample is the (capped) lag; the window keeps it until
        // it ages out, so an estimate errs on the patient side.
        assert_eq!(e.cadence("a"), Some(Duration::from_secs(20)));
        for i in 5..(5 + SAMPLES as u64) {
            let unix = 50_000 * MS + i * 100 * MS;
            e.observe(
                "a",
                t0 + Duration::from_millis(100 * i),
                unix,
                unix - 20_000 * MS,
            );
        }
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(100)));
    }

    #[test]
    fn a_clock_ahead_gives_no_lag() {
        let e = Exporters::default();
        let t0 = Instant::now();
        e.observe("a", t0, 1000 * MS, 2000 * MS);
        assert_eq!(
            e.cadence("a"),
            None,
            "no sample from a first batch without a lag"
        );
        e.observe("a", t0 + Duration::from_millis(250), 1250 * MS, 3000 * MS);
        assert_eq!(e.cadence("a"), Some(Duration::from_millis(250)));
        assert_eq!(
            e.cadences(),
            vec![("a".to_string(), Duration::from_millis(250))]
        );
    }
}
