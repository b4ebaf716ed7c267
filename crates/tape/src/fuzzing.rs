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
