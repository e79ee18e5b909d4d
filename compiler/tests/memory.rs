//! Memory budget of the trace model: at most 1 KB per typical span (10 attributes), measured with
//! a counting allocator (live bytes after building, OTLP input dropped).
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../benches/support/generator.rs"]
mod generator;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tbt_compiler::trace::{Trace, TraceId};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn at_most_one_kilobyte_per_span() {
    for n in [10_000usize, 100_000] {
        let req = generator::request(n);
        let region = Region::new(GLOBAL);
        let trace = Trace::from_export_request(&req, Some(TraceId(generator::TRACE_ID)));
        let stats = region.change();
        let live = stats.bytes_allocated as isize - stats.bytes_deallocated as isize
            + stats.bytes_reallocated;
        let per_span = live as f64 / n as f64;
        println!(
            "{n} spans: {live} live bytes, {per_span:.0} bytes/span (estimate {} bytes/span)",
            trace.approx_heap_bytes() / n
        );
        assert_eq!(trace.len(), n);
        assert!(per_span <= 1024.0, "{per_span:.0} bytes per span");
        // The same model read straight from protobuf bytes.
        let bytes = prost::Message::encode_to_vec(&req);
        drop(req);
        drop(trace);
        let region = Region::new(GLOBAL);
        let trace = Trace::decode_protobuf(&bytes, Some(TraceId(generator::TRACE_ID))).unwrap();
        let stats = region.change();
        let live = stats.bytes_allocated as isize - stats.bytes_deallocated as isize
            + stats.bytes_reallocated;
        let per_span = live as f64 / n as f64;
        println!("{n} spans from protobuf bytes: {per_span:.0} bytes/span");
        assert_eq!(trace.len(), n);
        assert!(per_span <= 1024.0, "{per_span:.0} bytes per span");
    }
}
