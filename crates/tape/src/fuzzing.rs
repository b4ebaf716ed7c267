//! Entry points for fuzz targets, also run over sample inputs by the integration tests.
//! Each takes arbitrary bytes, runs the code on them and checks its invariants with
//! `assert!`; a panic is a bug.

use crate::{Error, JsonlReader, JsonlWriter, TapeFrame};

/// Reads `data` as a JSONL tape. Every error points inside the data; a torn tail is the last
/// thing reported; every frame read writes and reads back to an equal frame with the same
/// message bytes.
pub fn jsonl_read(data: &[u8]) {
    let Ok(mut reader) = JsonlReader::new(data) else {
        return;
    };
    let header = reader.header().clone();
    let mut frames: Vec<TapeFrame> = Vec::new();
    let mut torn = false;
    for item in reader.by_ref() {
        assert!(!torn, "nothing comes after a torn tail");
        match item {
            Ok(frame) => frames.push(frame),
            Err(Error::TornTail { at, len }) => {
                assert_eq!(at.byte + len, data.len() as u64);
                torn = true;
            }
            Err(e) => {
                let at = e.position().expect("a reading error has a position");
                assert!(at.byte <= data.len() as u64);
            }
        }
    }
    let mut writer = JsonlWriter::new(Vec::new());
    writer.write_header(&header).expect("writing to memory");
    for frame in &frames {
        writer.write_frame(frame).expect("writing to memory");
    }
    let written = writer.into_inner().expect("writing to memory");
    let mut again = JsonlReader::new(&written[..]).expect("a written tape reads back");
    assert_eq!(again.header(), &header);
    for frame in &frames {
        let read = again
            .next()
            .expect("as many frames as written")
            .expect("a written frame reads back");
        assert_eq!(&read, frame);
    }
    assert!(again.next().is_none());
}

/// Checks the items a reader of `data` produced: every error points inside the data, a
/// torn tail is the last thing reported, and returns the items read.
fn check_items(
    data: &[u8],
    mut next: impl FnMut() -> Option<crate::Result<crate::TapeItem>>,
) -> Vec<crate::TapeItem> {
    let mut items = Vec::new();
    let mut torn = false;
    while let Some(item) = next() {
        assert!(!torn, "nothing comes after a torn tail");
        match item {
            Ok(item) => items.push(item),
            Err(Error::TornTail { at, len }) => {
                assert!(at.byte + len <= data.len() as u64);
                torn = true;
            }
            Err(e) => {
                let at = e.position().expect("a reading error has a position");
                assert!(at.byte <= data.len() as u64);
            }
        }
    }
    items
}

/// Reads `data` as a binary tape; every error points inside the data; the items read
/// write and read back equal.
pub fn binary_read(data: &[u8]) {
    let Ok(mut reader) = crate::BinaryReader::new(data) else {
        return;
    };
    let header = reader.header().clone();
    let items = check_items(data, || reader.next_item());
    let mut writer =
        crate::BinaryWriter::new(Vec::new(), &header, "<mem>").expect("writing to memory");
    for item in &items {
        match item {
            crate::TapeItem::Frame(f) => writer.write_frame(f),
            crate::TapeItem::Dropped { count, offset_ns } => {
                writer.write_dropped(*count, *offset_ns)
            }
        }
        .expect("writing to memory");
    }
    let written = writer.into_inner().expect("writing to memory");
    let mut again = crate::BinaryReader::new(&written[..]).expect("a written tape reads back");
    assert_eq!(again.header(), &header);
    for item in &items {
        let read = again
            .next_item()
            .expect("as many items")
            .expect("reads back");
        assert_eq!(&read, item);
    }
    assert!(again.next_item().is_none());
}

/// Reads `data` as an lz4 tape; every error points inside the data; the items read write
/// and read back equal.
pub fn lz4_read(data: &[u8]) {
    let Ok(mut reader) = crate::Lz4Reader::new(data) else {
        return;
    };
    let header = reader.header().clone();
    let items = check_items(data, || reader.next_item());
    let mut writer = crate::Lz4Writer::new(Vec::new(), &header, "<mem>")
        .expect("writing to memory")
        .with_block_limits(4096, 3);
    for item in &items {
        match item {
            crate::TapeItem::Frame(f) => writer.write_frame(f),
            crate::TapeItem::Dropped { count, offset_ns } => {
                writer.write_dropped(*count, *offset_ns)
            }
        }
        .expect("writing to memory");
    }
    let written = writer.finish().expect("writing to memory");
    let mut again = crate::Lz4Reader::new(&written[..]).expect("a written tape reads back");
    assert_eq!(again.header(), &header);
    for item in &items {
        let read = again
            .next_item()
            .expect("as many items")
            .expect("reads back");
        assert_eq!(&read, item);
    }
    assert!(again.next_item().is_none());
    assert!(again.has_footer());
}
