//! Reading a tape takes constant memory: validating a tape of 40 MiB of messages raises the
//! process's peak resident memory by far less than the tape's size, in every format.
//! (nextest runs each test in its own process, so the peak is this test's.)

#![allow(clippy::unwrap_used)] // tests may unwrap

use shadowcat_tape::{
    Direction, Edge, ReverseReader, TapeFormat, TapeFrame, TapeHeader, TapeWriter, open, validate,
};

const FRAMES: u64 = 10_000;
const MESSAGE: usize = 4096;

/// Peak resident memory of this process, in bytes (Linux `VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn check(format: TapeFormat) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("big.{}", format.extension()));
    let mut writer =
        TapeWriter::create(&path, format, &TapeHeader::from_unix_ns("big", 0)).unwrap();
    let filler: String = (0..MESSAGE)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    for i in 0..FRAMES {
        let msg = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"t{}","arguments":{{"text":"{}"}}}}}}"#,
            i % 50,
            &filler[(i as usize % 100)..]
        );
        let frame = TapeFrame::new(i, Direction::ClientToServer, Edge::Client, msg.into_bytes())
            .with_session_id("s");
        writer.write_frame(&frame).unwrap();
    }
    writer.finish().unwrap();
    let before = peak_rss();

    let report = validate(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.frames, FRAMES);
    let mut frames = 0;
    for frame in open(&path).unwrap() {
        frame.unwrap();
        frames += 1;
    }
    assert_eq!(frames, FRAMES);
    if format == TapeFormat::Binary {
        assert_eq!(
            ReverseReader::open(&path)
                .unwrap()
                .last_frames(5)
                .unwrap()
                .len(),
            5
        );
    }

    let grew = peak_rss().saturating_sub(before);
    let size = FRAMES * MESSAGE as u64;
    assert!(
        grew < size / 4,
        "{format}: reading {size} bytes of messages raised peak memory by {grew} bytes"
    );
}

#[test]
fn reading_a_big_jsonl_tape_takes_constant_memory() {
    check(TapeFormat::Jsonl);
}

#[test]
fn reading_a_big_binary_tape_takes_constant_memory() {
    check(TapeFormat::Binary);
}

#[test]
fn reading_a_big_lz4_tape_takes_constant_memory() {
    check(TapeFormat::Lz4);
}
