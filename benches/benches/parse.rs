//! `Message::parse`: the one parse every message gets on its way through the proxy.
//!
//! `parse` reports bytes per second for single messages of typical shapes; `parse_batch`
//! reports messages per second for batches of several sizes.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use shadowcat_benches::fixtures;
use shadowcat_mcp::Message;

fn parse(c: &mut Criterion) {
    let cases = [
        ("small_request", fixtures::small_request()),
        ("initialize", fixtures::initialize_request(1, "2025-06-18")),
        ("echo_call_16b", fixtures::echo_call(1, "0123456789abcdef")),
        (
            "echo_result_16b",
            fixtures::echo_result(1, "0123456789abcdef"),
        ),
        ("tool_result_64k", fixtures::large_result(1, 64 * 1024)),
        ("batch_16", fixtures::batch(16)),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in cases {
        let bytes = Bytes::from(bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| Message::parse(black_box(bytes.clone())).expect("the fixture is valid"));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_batch");
    for size in [4, 16, 64] {
        let bytes = Bytes::from(fixtures::batch(size));
        group.throughput(Throughput::Elements(size));
        group.bench_with_input(BenchmarkId::from_parameter(size), &bytes, |b, bytes| {
            b.iter(|| Message::parse(black_box(bytes.clone())).expect("the fixture is valid"));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut criterion = config().configure_from_args();
    parse(&mut criterion);
    criterion.final_summary();
}
