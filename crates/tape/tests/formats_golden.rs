//! The committed golden tapes of the binary and lz4 formats (`tests/golden/v1.sctape`,
//! `tests/golden/v1.sctape.lz4`) and a JSONL tape with a dropped marker
//! (`tests/golden/v1-dropped.jsonl`) hold the frames of `tests/golden/v1.jsonl` with a
//! dropped marker after the third frame. Every later version must keep reading them to the
//! same items. The writers must also still produce them byte for byte; run with
//! `SHADOWCAT_BLESS=1` to rewrite them after a deliberate change (version 1 only).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use shadowcat_tape::{
    JsonlReader, Lz4Index, TapeFormat, TapeHeader, TapeItem, TapeWriter, open, validate,
};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn bless() -> bool {
    std::env::var_os("SHADOWCAT_BLESS").is_some_and(|v| v == "1")
}

/// The header and items every golden tape holds.
fn expected() -> (TapeHeader, Vec<TapeItem>) {
    let reader = JsonlReader::open(golden("v1.jsonl")).unwrap();
    let header = reader.header().clone();
    let mut items: Vec<TapeItem> = reader.map(|f| TapeItem::Frame(f.unwrap())).collect();
    assert!(items.len() > 3, "the JSONL golden tape has frames");
    items.insert(
        3,
        TapeItem::Dropped {
            count: 12,
            offset_ns: 15_300_000_000,
        },
    );
    (header, items)
}

fn read(path: &Path) -> (TapeHeader, TapeFormat, u32, Vec<TapeItem>) {
    let mut reader = open(path).unwrap();
    let mut items = Vec::new();
    while let Some(item) = reader.next_item() {
        items.push(item.unwrap());
    }
    assert!(reader.is_complete());
    (
        reader.header().clone(),
        reader.format(),
        reader.version(),
        items,
    )
}

fn check(name: &str, format: TapeFormat) {
    let (header, items) = expected();
    let path = golden(name);
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join(name);
    let mut writer = TapeWriter::create(&fresh, format, &header).unwrap();
    for item in &items {
        writer.write_item(item).unwrap();
    }
    writer.finish().unwrap();
    let written = std::fs::read(&fresh).unwrap();
    if bless() {
        std::fs::write(&path, &written).unwrap();
    }

    let (h, f, version, read_items) = read(&path);
    assert_eq!((f, version), (format, 1));
    assert_eq!(h, header);
    assert_eq!(read_items, items, "{name} reads to the golden items");
    let report = validate(&path).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.dropped, 12);

    let committed = std::fs::read(&path).unwrap();
    assert!(
        committed == written,
        "the writer's output differs from {} (SHADOWCAT_BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn the_binary_golden_tape_reads_and_is_still_written() {
    check("v1.sctape", TapeFormat::Binary);
}

#[test]
fn the_lz4_golden_tape_reads_and_is_still_written() {
    check("v1.sctape.lz4", TapeFormat::Lz4);
    let index = Lz4Index::open(golden("v1.sctape.lz4")).unwrap();
    assert!(index.has_footer());
    assert_eq!(index.blocks().len(), 1);
    let block = &index.blocks()[0];
    assert!(block.methods.contains("tools/call"), "{block:?}");
    assert!(!block.tools.is_empty(), "{block:?}");
    assert!(!block.sessions.is_empty(), "{block:?}");
}

#[test]
fn the_jsonl_golden_tape_with_a_dropped_marker_reads_and_is_still_written() {
    check("v1-dropped.jsonl", TapeFormat::Jsonl);
    let text = std::fs::read_to_string(golden("v1-dropped.jsonl")).unwrap();
    assert_eq!(
        text.lines().nth(4),
        Some(r#"{"dropped":12,"offset_ns":15300000000}"#)
    );
}

/// The example record in `docs/tape-format.md`, byte for byte.
#[test]
fn the_documented_example_record_is_what_the_writer_writes() {
    use shadowcat_tape::{BinaryWriter, Direction, Edge, TapeFrame};
    let header = TapeHeader::from_unix_ns("t", 0);
    let empty = BinaryWriter::new(Vec::new(), &header, "<mem>")
        .unwrap()
        .into_inner()
        .unwrap();
    let mut writer = BinaryWriter::new(Vec::new(), &header, "<mem>").unwrap();
    let frame = TapeFrame::new(1_200, Direction::ClientToServer, Edge::Client, &b"{}"[..]);
    writer.write_frame(&frame).unwrap();
    let bytes = writer.into_inner().unwrap();
    let record = &bytes[empty.len()..];
    let expected: [u8; 30] = [
        0x11, 0, 0, 0, 1, 0xb0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'{', b'}', 0xf3,
        0x59, 0xb1, 0x70, 0x11, 0, 0, 0,
    ];
    assert_eq!(record, expected);
    assert_eq!(&empty[..12], b"\x89SCTAPE\n\x01\x00\x00\x00");
}
