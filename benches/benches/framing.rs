//! Framing: newline-delimited JSON (stdio) and server-sent events (HTTP).
//!
//! Decoding feeds a 20,000-message stream in 64 KiB chunks, as a socket or pipe read would,
//! and drains every frame after each chunk; it is reported in bytes per second (`*_bytes`
//! groups) and in messages per second (`*_messages` groups). `lines_*/decode_and_parse` adds
//! the `Message::parse` of each line: the per-message work of the stdio proxy before routing.
//! Encoding appends one message (or event) to a reused buffer.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use shadowcat_benches::fixtures;
use shadowcat_mcp::{
    DEFAULT_MAX_LINE, LineDecoder, Message, SseDecoder, SseEncoder, SseEvent, SseItem, encode_line,
};

const CHUNK: usize = 64 * 1024;
const MESSAGES: u64 = 20_000;

/// Frames every line of `stream`, pushed in chunks; parses each when `parse` is set.
fn decode_lines(stream: &[u8], parse: bool) -> u64 {
    let mut decoder = LineDecoder::new(DEFAULT_MAX_LINE);
    let mut count = 0;
    for chunk in stream.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(line) = decoder.next_line() {
            let line = line.expect("the stream has no oversized lines");
            if parse {
                black_box(Message::parse(line.bytes).expect("the stream is valid"));
            } else {
                black_box(line);
            }
            count += 1;
        }
    }
    count
}

/// The same messages as `data` of `event: message` events with ids, as a Streamable HTTP
/// response stream carries them.
fn sse_stream(lines: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let encoder = SseEncoder::new();
    for (n, line) in lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let data = std::str::from_utf8(line).expect("the stream is UTF-8");
        let event = SseEvent::new(data)
            .with_event("message")
            .with_id(n.to_string());
        encoder.encode_event(&event, &mut out).expect("valid event");
    }
    out.to_vec()
}

/// Decodes every event of `stream`, pushed in chunks.
fn decode_events(stream: &[u8]) -> u64 {
    let mut decoder = SseDecoder::new(DEFAULT_MAX_LINE);
    let mut count = 0;
    for chunk in stream.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(item) = decoder.next_item() {
            if let SseItem::Event(event) = item.expect("the stream has no oversized events") {
                black_box(event);
                count += 1;
            }
        }
    }
    count
}

fn decode(c: &mut Criterion) {
    let (lines, count) = fixtures::message_stream(MESSAGES);
    assert_eq!(decode_lines(&lines, true), count);
    let events = sse_stream(&lines);
    assert_eq!(decode_events(&events), count);
    for (unit, throughput) in [
        ("bytes", None),
        ("messages", Some(Throughput::Elements(count))),
    ] {
        let mut group = c.benchmark_group(format!("lines_{unit}"));
        group.sample_size(30);
        let bytes = Throughput::Bytes(lines.len() as u64);
        group.throughput(throughput.clone().unwrap_or(bytes));
        group.bench_function("decode", |b| {
            b.iter(|| decode_lines(black_box(&lines), false))
        });
        group.bench_function("decode_and_parse", |b| {
            b.iter(|| decode_lines(black_box(&lines), true));
        });
        group.finish();

        let mut group = c.benchmark_group(format!("sse_{unit}"));
        group.sample_size(30);
        let bytes = Throughput::Bytes(events.len() as u64);
        group.throughput(throughput.unwrap_or(bytes));
        group.bench_function("decode", |b| b.iter(|| decode_events(black_box(&events))));
        group.finish();
    }
}

fn encode(c: &mut Criterion) {
    let pretty = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&fixtures::initialize_request(
            1,
            "2025-06-18",
        ))
        .expect("the fixture is valid"),
    )
    .expect("a value always serializes");
    let cases = [
        ("echo_call_16b", fixtures::echo_call(1, "0123456789abcdef")),
        ("tool_result_64k", fixtures::large_result(1, 64 * 1024)),
        ("initialize_pretty", pretty),
    ];
    let mut group = c.benchmark_group("encode_line");
    let mut out = BytesMut::with_capacity(256 * 1024);
    for (name, message) in &cases {
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                encode_line(black_box(message), &mut out);
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sse_encode");
    let encoder = SseEncoder::new();
    for (name, message) in &cases[..2] {
        let event = SseEvent::new(String::from_utf8(message.clone()).expect("UTF-8"))
            .with_event("message")
            .with_id("1234");
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                encoder
                    .encode_event(black_box(&event), &mut out)
                    .expect("valid event");
            });
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
    decode(&mut criterion);
    encode(&mut criterion);
    criterion.final_summary();
}
