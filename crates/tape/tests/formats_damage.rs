//! Damaged binary and lz4 tapes: a tape cut at every byte reads up to the cut and reports
//! the torn tail where it starts; a flipped byte is reported with its record's offset;
//! `repair` makes every damaged tape validate clean; binary tapes read backwards; lz4
//! footers answer which blocks hold what.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;

use shadowcat_tape::{
    Direction, Edge, Error, Lz4Index, Lz4Writer, ReverseReader, TapeFormat, TapeFrame, TapeHeader,
    TapeItem, TapeWriter, open, repair, validate,
};

fn frames(n: u64) -> Vec<TapeFrame> {
    (0..n)
        .map(|i| {
            let (method, tool) = match i % 3 {
                0 => ("tools/call", format!("tool-{}", i % 4)),
                1 => ("resources/read", String::new()),
                _ => ("ping", String::new()),
            };
            let msg = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"{method}","params":{{"name":"{tool}"}}}}"#
            );
            TapeFrame::new(
                i * 1000,
                Direction::ClientToServer,
                Edge::Client,
                msg.into_bytes(),
            )
            .with_session_id(format!("s{}", i % 2))
        })
        .collect()
}

fn header() -> TapeHeader {
    TapeHeader::from_unix_ns("damage", 1_750_000_000_000_000_000)
}

/// Writes `frames` with a flush after each, so every frame is its own record (binary) or
/// block (lz4); returns the file's bytes and the offset after each flush.
fn write_flushed(path: &Path, format: TapeFormat, frames: &[TapeFrame]) -> (Vec<u8>, Vec<u64>) {
    let mut writer = TapeWriter::create(path, format, &header()).unwrap();
    let mut ends = vec![std::fs::metadata(path).unwrap().len()];
    for frame in frames {
        writer.write_frame(frame).unwrap();
        writer.flush().unwrap();
        ends.push(std::fs::metadata(path).unwrap().len());
    }
    writer.finish().unwrap();
    (std::fs::read(path).unwrap(), ends)
}

fn read_all(path: &Path) -> (Vec<TapeFrame>, Vec<Error>) {
    let mut reader = open(path).unwrap();
    let (mut ok, mut errs) = (Vec::new(), Vec::new());
    for item in reader.by_ref() {
        match item {
            Ok(f) => ok.push(f),
            Err(e) => errs.push(e),
        }
    }
    (ok, errs)
}

#[test]
fn a_cut_at_every_byte_reads_up_to_the_cut_and_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames(4);
    for format in [TapeFormat::Binary, TapeFormat::Lz4] {
        let full = dir.path().join(format!("full.{}", format.extension()));
        let (bytes, ends) = write_flushed(&full, format, &frames);
        let header_end = ends[0] as usize;
        for cut in 0..bytes.len() {
            let path = dir.path().join(format!("cut.{}", format.extension()));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            if cut < header_end {
                // No complete header: not openable, and says where.
                let err = open(&path).unwrap_err();
                assert!(
                    err.position().is_some_and(|p| p.byte == 0),
                    "{format} cut {cut}: {err}"
                );
                continue;
            }
            // The frames whose record ends by the cut are read; the rest is a torn tail.
            let whole = ends.iter().skip(1).filter(|&&e| e as usize <= cut).count();
            let (ok, errs) = read_all(&path);
            assert_eq!(ok, frames[..whole], "{format} cut {cut}");
            // Where the intact part ends: the last whole frame, or for lz4 after all frames,
            // the footer record, then the 16-byte trailer.
            let mut intact = ends[whole];
            let footer_end = bytes.len() as u64 - 16;
            if format == TapeFormat::Lz4 && whole == frames.len() && cut as u64 >= footer_end {
                intact = footer_end;
            }
            let cut = cut as u64;
            if cut == intact && (format == TapeFormat::Binary || cut < footer_end) {
                assert!(errs.is_empty(), "{format} cut {cut}: {errs:?}");
            } else {
                assert_eq!(errs.len(), 1, "{format} cut {cut}: {errs:?}");
                match &errs[0] {
                    Error::TornTail { at, len } => {
                        assert_eq!(at.byte, intact, "{format} cut {cut}");
                        assert_eq!(at.byte + len, cut);
                    }
                    other => panic!("{format} cut {cut}: {other}"),
                }
            }
            let report = validate(&path).unwrap();
            assert_eq!(report.frames, whole as u64);
            let clean = format == TapeFormat::Binary && cut == intact;
            assert_eq!(report.is_clean(), clean, "{format} cut {cut}: {report:?}");
            repair(&path).unwrap();
            let after = validate(&path).unwrap();
            assert!(after.is_clean(), "{format} cut {cut}: {after:?}");
            assert_eq!(after.frames, whole as u64, "{format} cut {cut}");
        }
    }
}

#[test]
fn a_corrupted_byte_is_reported_with_its_record_offset_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames(3);
    for format in [TapeFormat::Binary, TapeFormat::Lz4] {
        let path = dir.path().join(format!("crc.{}", format.extension()));
        let (mut bytes, ends) = write_flushed(&path, format, &frames);
        // A byte inside the second record's payload.
        let at = ends[1] as usize + 20;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (ok, errs) = read_all(&path);
        assert_eq!(ok, vec![frames[0].clone(), frames[2].clone()], "{format}");
        assert_eq!(errs.len(), 1, "{format}: {errs:?}");
        let text = errs[0].to_string();
        assert!(
            matches!(errs[0], Error::Malformed { .. }),
            "{format}: {text}"
        );
        assert_eq!(
            errs[0].position().unwrap().byte,
            ends[1],
            "{format}: {text}"
        );
        assert!(text.contains("CRC mismatch"), "{text}");
        assert!(text.contains(&format!("(byte {})", ends[1])), "{text}");
        let report = validate(&path).unwrap();
        assert_eq!((report.errors, report.first_error_at), (1, Some(ends[1])));
        let fixed = repair(&path).unwrap();
        assert!(fixed.rewritten);
        let report = validate(&path).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.frames, 2);
    }
}

#[test]
fn a_binary_tape_reads_backwards_even_with_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rev.sctape");
    let frames = frames(10);
    let mut writer = TapeWriter::create(&path, TapeFormat::Binary, &header()).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        writer.write_frame(frame).unwrap();
        if i == 4 {
            writer.write_dropped(2, 4500).unwrap();
        }
    }
    writer.finish().unwrap();

    let backwards: Vec<TapeItem> = ReverseReader::open(&path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut forwards: Vec<TapeItem> = Vec::new();
    let mut reader = open(&path).unwrap();
    while let Some(item) = reader.next_item() {
        forwards.push(item.unwrap());
    }
    forwards.reverse();
    assert_eq!(backwards, forwards);
    assert_eq!(
        ReverseReader::open(&path).unwrap().last_frames(3).unwrap(),
        frames[7..]
    );
    assert_eq!(
        ReverseReader::open(&path)
            .unwrap()
            .last_frames(100)
            .unwrap(),
        frames
    );

    // Half a record appended: the walk starts at the last intact record.
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    bytes.extend_from_within(whole - 40..whole - 10);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        ReverseReader::open(&path).unwrap().last_frames(2).unwrap(),
        frames[8..]
    );
}

#[test]
fn the_lz4_footer_says_which_blocks_hold_a_tool_a_session_and_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx.sctape.lz4");
    let frames = frames(40);
    let mut writer = Lz4Writer::create(&path, &header())
        .unwrap()
        .with_block_limits(1 << 20, 10);
    for frame in &frames {
        writer.write_frame(frame).unwrap();
    }
    writer.write_dropped(5, 39_500).unwrap();
    writer.finish().unwrap();

    let index = Lz4Index::open(&path).unwrap();
    assert!(index.has_footer());
    assert_eq!(index.blocks().len(), 5);
    assert_eq!(index.blocks().iter().map(|b| b.frames).sum::<u64>(), 40);
    assert_eq!(index.blocks()[4].dropped, 5);
    // tool-3 is called by frames 3, 15, 27, 39 (i % 3 == 0 and i % 4 == 3): blocks 0..=3.
    let with_tool: Vec<u64> = index
        .blocks_with_tool("tool-3")
        .map(|b| b.first_offset_ns)
        .collect();
    assert_eq!(with_tool, vec![0, 10_000, 20_000, 30_000]);
    assert_eq!(index.blocks_with_tool("nope").count(), 0);
    assert_eq!(index.blocks_with_session("s1").count(), 4);
    assert_eq!(index.blocks_with_method("ping").count(), 4);
    let at: Vec<&shadowcat_tape::BlockEntry> = index.blocks_between(25_000, 25_000).collect();
    assert_eq!(at.len(), 1);
    let items = index.read_block(at[0]).unwrap();
    assert_eq!(items[5], TapeItem::Frame(frames[25].clone()));

    // Without its footer the index is rebuilt by reading the blocks, to the same answers.
    let bytes = std::fs::read(&path).unwrap();
    let footer_at = index.blocks_end() as usize;
    std::fs::write(&path, &bytes[..footer_at + 7]).unwrap();
    let scanned = Lz4Index::open(&path).unwrap();
    assert!(!scanned.has_footer());
    assert_eq!(scanned.blocks(), index.blocks());
    let report = validate(&path).unwrap();
    assert!(!report.complete && !report.is_clean());
    repair(&path).unwrap();
    let repaired = Lz4Index::open(&path).unwrap();
    assert!(repaired.has_footer());
    assert_eq!(repaired.blocks().iter().map(|b| b.frames).sum::<u64>(), 40);
    assert!(validate(&path).unwrap().is_clean());
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for format in [TapeFormat::Binary, TapeFormat::Lz4] {
        let path = dir.path().join(format!("new.{}", format.extension()));
        let (mut bytes, _) = write_flushed(&path, format, &frames(1));
        bytes[8] = 2;
        std::fs::write(&path, &bytes).unwrap();
        let err = open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NewerVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn walking_backwards_skips_a_corrupt_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revcrc.sctape");
    let frames = frames(3);
    let (mut bytes, ends) = write_flushed(&path, TapeFormat::Binary, &frames);
    bytes[ends[1] as usize + 20] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let items: Vec<_> = ReverseReader::open(&path).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(
        *items[0].as_ref().unwrap(),
        TapeItem::Frame(frames[2].clone())
    );
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.position().unwrap().byte, ends[1], "{err}");
    assert_eq!(
        *items[2].as_ref().unwrap(),
        TapeItem::Frame(frames[0].clone())
    );
}

#[test]
fn a_jsonl_tape_cut_anywhere_repairs_to_a_prefix_of_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = frames(4);
    let full = dir.path().join("full.jsonl");
    let (bytes, ends) = write_flushed(&full, TapeFormat::Jsonl, &frames);
    for cut in ends[0] as usize..bytes.len() {
        let path = dir.path().join("cut.jsonl");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let before = validate(&path).unwrap();
        repair(&path).unwrap();
        let after = validate(&path).unwrap();
        assert!(after.is_clean(), "cut {cut}: {after:?}");
        assert_eq!(after.frames, before.frames, "cut {cut}");
        let (ok, errs) = read_all(&path);
        assert!(errs.is_empty());
        assert_eq!(ok, frames[..ok.len()], "cut {cut}");
        // Whole lines all read; a last line cut short is gone.
        let whole = ends.iter().skip(1).filter(|&&e| e as usize <= cut).count();
        assert!(ok.len() == whole || ok.len() == whole + 1, "cut {cut}");
    }
}
