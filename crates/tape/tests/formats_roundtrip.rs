//! Every format round-trips: what is written (frames with their exact bytes, dropped
//! markers, the header) reads back equal through `open`, and `convert` between every pair
//! of formats keeps every item exactly.

#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use shadowcat_tape::{
    Direction, Edge, HttpMeta, TapeFormat, TapeFrame, TapeHeader, TapeItem, TapeWriter, convert,
    open, validate,
};

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        (any::<u32>(), "[a-z/]{1,12}").prop_map(|(id, m)| {
            format!(r#"{{"jsonrpc":"2.0", "id":{id},"method":"{m}"}}"#).into_bytes()
        }),
        "[a-z_]{1,8}".prop_map(|tool| {
            format!(
                r#"{{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{{"name":"{tool}"}}}}"#
            )
            .into_bytes()
        }),
        Just(b"{\n  \"jsonrpc\": \"2.0\"\r\n}\n".to_vec()),
    ]
}

fn http() -> impl Strategy<Value = Option<HttpMeta>> {
    prop::option::of(
        (
            prop::option::of(any::<u16>()),
            prop::collection::btree_map("[a-z-]{1,10}", any::<String>(), 0..3),
            prop::option::of(any::<String>()),
        )
            .prop_map(|(status, headers, event_id)| {
                let mut meta = HttpMeta::new();
                meta.status = status;
                meta.headers = headers;
                meta.event_id = event_id;
                meta
            }),
    )
}

fn frame() -> impl Strategy<Value = TapeFrame> {
    (
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<String>()),
        message(),
        http(),
    )
        .prop_map(|(offset, c2s, client, session, message, http)| {
            let direction = if c2s {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            let edge = if client { Edge::Client } else { Edge::Server };
            let mut frame = TapeFrame::new(offset, direction, edge, message);
            frame.session_id = session;
            frame.http = http;
            frame
        })
}

fn item() -> impl Strategy<Value = TapeItem> {
    prop_oneof![
        8 => frame().prop_map(TapeItem::Frame),
        1 => (any::<u64>(), any::<u64>())
            .prop_map(|(count, offset_ns)| TapeItem::Dropped { count, offset_ns }),
    ]
}

fn header() -> impl Strategy<Value = TapeHeader> {
    (
        any::<String>(),
        any::<u64>(),
        prop::option::of(any::<String>()),
        prop::collection::vec(any::<String>(), 0..3),
    )
        .prop_map(|(id, ns, name, tags)| {
            let mut h = TapeHeader::from_unix_ns(id, ns).with_metadata("mode", "forward".into());
            h.name = name;
            h.tags = tags;
            h
        })
}

fn write(path: &std::path::Path, format: TapeFormat, header: &TapeHeader, items: &[TapeItem]) {
    let mut writer = TapeWriter::create(path, format, header).unwrap();
    for (i, item) in items.iter().enumerate() {
        writer.write_item(item).unwrap();
        if i % 5 == 4 {
            writer.flush().unwrap();
        }
    }
    writer.finish().unwrap();
}

fn read(path: &std::path::Path) -> (TapeHeader, TapeFormat, Vec<TapeItem>) {
    let mut reader = open(path).unwrap();
    let mut items = Vec::new();
    while let Some(item) = reader.next_item() {
        items.push(item.unwrap());
    }
    assert!(reader.is_complete());
    (reader.header().clone(), reader.format(), items)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_format_round_trips(header in header(), items in prop::collection::vec(item(), 0..20)) {
        let dir = tempfile::tempdir().unwrap();
        for format in TapeFormat::ALL {
            let path = dir.path().join(format!("t.{}", format.extension()));
            write(&path, format, &header, &items);
            let (h, f, read_items) = read(&path);
            prop_assert_eq!(f, format);
            prop_assert_eq!(&h, &header);
            prop_assert_eq!(&read_items, &items);
            let report = validate(&path).unwrap();
            prop_assert!(report.is_clean(), "{:?}", report);
            let frames = items.iter().filter(|i| matches!(i, TapeItem::Frame(_))).count();
            prop_assert_eq!(report.frames, frames as u64);
        }
    }

    #[test]
    fn convert_between_every_pair_keeps_every_item(header in header(), items in prop::collection::vec(item(), 0..12)) {
        let dir = tempfile::tempdir().unwrap();
        for from in TapeFormat::ALL {
            let src = dir.path().join(format!("src.{}", from.extension()));
            write(&src, from, &header, &items);
            for to in TapeFormat::ALL {
                let dst = dir.path().join(format!("dst-{from}.{}", to.extension()));
                let report = convert(&src, &dst, to).unwrap();
                prop_assert_eq!(report.skipped_errors, 0);
                let (h, f, read_items) = read(&dst);
                prop_assert_eq!(f, to);
                prop_assert_eq!(&h, &header);
                prop_assert_eq!(&read_items, &items);
            }
        }
    }
}

#[test]
fn iterators_yield_frames_and_count_dropped_markers() {
    let dir = tempfile::tempdir().unwrap();
    let header = TapeHeader::from_unix_ns("t", 1);
    let f1 = TapeFrame::new(1, Direction::ClientToServer, Edge::Client, &b"{}"[..]);
    let f2 = TapeFrame::new(9, Direction::ServerToClient, Edge::Client, &b"[]"[..]);
    let items = [
        TapeItem::Frame(f1.clone()),
        TapeItem::Dropped {
            count: 7,
            offset_ns: 5,
        },
        TapeItem::Frame(f2.clone()),
        TapeItem::Dropped {
            count: 3,
            offset_ns: 10,
        },
    ];
    for format in TapeFormat::ALL {
        let path = dir.path().join(format!("t.{}", format.extension()));
        write(&path, format, &header, &items);
        let mut reader = open(&path).unwrap();
        let frames: Vec<TapeFrame> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(frames, vec![f1.clone(), f2.clone()], "{format}");
        assert_eq!(reader.dropped(), 10, "{format}");
        let report = validate(&path).unwrap();
        assert_eq!((report.drop_markers, report.dropped), (2, 10), "{format}");
        assert_eq!(report.offsets_ns, Some((1, 9)));
    }
    let jsonl = std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap();
    assert!(
        jsonl.contains("\n{\"dropped\":7,\"offset_ns\":5}\n"),
        "{jsonl}"
    );
}

#[test]
fn formats_are_named_by_extension_and_detected_by_content() {
    for format in TapeFormat::ALL {
        let name = format!("x.{}", format.extension());
        assert_eq!(TapeFormat::from_extension(&name), Some(format));
        assert_eq!(TapeFormat::from_name(format.as_str()), Some(format));
        assert_eq!(format.version(), 1);
    }
    assert_eq!(TapeFormat::from_extension("x.txt"), None);
    let dir = tempfile::tempdir().unwrap();
    // A binary tape named like a JSONL file still opens as binary.
    let path = dir.path().join("misnamed.jsonl");
    write(
        &path,
        TapeFormat::Binary,
        &TapeHeader::from_unix_ns("t", 0),
        &[],
    );
    assert_eq!(open(&path).unwrap().format(), TapeFormat::Binary);
    let foreign = dir.path().join("foreign.sctape");
    std::fs::write(&foreign, b"PK\x03\x04 not a tape").unwrap();
    let err = open(&foreign).unwrap_err().to_string();
    assert!(
        err.contains("(byte 0)") && err.contains("not a Shadowcat tape"),
        "{err}"
    );
}

#[test]
fn jsonl_dropped_markers_are_strict_and_frames_may_mention_dropped() {
    let head = r#"{"shadowcat_tape":"jsonl","version":1,"tape_id":"t","started_at":"1970-01-01T00:00:00.000000000Z","started_at_unix_ns":0,"shadowcat_version":"0.1.0"}"#;
    let frame =
        r#"{"offset_ns":3,"direction":"client_to_server","edge":"client","message":{"dropped":1}}"#;
    let tape = format!("{head}\n{{\"dropped\":5}}\n{frame}\n{{\"offset_ns\":9,\"dropped\":2}}\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    std::fs::write(&path, &tape).unwrap();
    let mut reader = open(&path).unwrap();
    let first = reader.next_item().unwrap().unwrap_err().to_string();
    assert!(
        first.contains(":2 (byte ") && first.contains("offset_ns"),
        "{first}"
    );
    match reader.next_item().unwrap().unwrap() {
        TapeItem::Frame(f) => assert_eq!(&f.message[..], br#"{"dropped":1}"#),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reader.next_item().unwrap().unwrap(),
        TapeItem::Dropped {
            count: 2,
            offset_ns: 9
        }
    );
    assert!(reader.next_item().is_none());
    assert_eq!(reader.dropped(), 2);
}
