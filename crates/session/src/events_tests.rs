use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

fn data(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

#[test]
fn event_ids_name_stream_and_sequence() {
    let mut store = EventStore::new(8, 8);
    let a = store.open_stream();
    let b = store.open_stream();
    let a1 = store.push(a, data("a1"));
    let b1 = store.push(b, data("b1"));
    let a2 = store.push(a, data("a2"));
    assert_eq!(a1.to_string(), "0-1");
    assert_eq!(b1.to_string(), "1-2");
    assert_eq!(String::from(a2), "0-3");
    assert_eq!(EventId::parse("0-3"), Some(a2));
    assert_eq!(a2.stream(), a);
    assert_eq!(a2.seq(), 3);
    assert_eq!(store.bytes(), 6);
    assert_eq!(store.events(), 3);
}

#[test]
fn replay_gives_only_that_streams_later_events() {
    let mut store = EventStore::new(8, 8);
    let a = store.open_stream();
    let b = store.open_stream();
    let a1 = store.push(a, data("a1"));
    store.push(b, data("b1"));
    let a2 = store.push(a, data("a2"));
    let a3 = store.push(a, data("a3"));
    let replay = store.replay_after(&a1.to_string()).unwrap();
    assert_eq!(replay.stream, a);
    assert!(!replay.closed);
    assert_eq!(
        replay.events,
        vec![(a2.to_string(), data("a2")), (a3.to_string(), data("a3"))]
    );
    assert!(
        store
            .replay_after(&a3.to_string())
            .unwrap()
            .events
            .is_empty()
    );

    store.close_stream(a);
    assert!(store.is_closed(a));
    assert!(!store.is_closed(b));
    assert!(store.replay_after(&a3.to_string()).unwrap().closed);
    // Events after close are not kept.
    let late = store.push(a, data("late"));
    assert_eq!(
        store.replay_after(&late.to_string()),
        Err(ReplayError::Unknown)
    );
    assert!(
        store
            .replay_after(&a3.to_string())
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn malformed_and_unissued_ids_are_unknown() {
    let mut store = EventStore::new(8, 8);
    let a = store.open_stream();
    store.push(a, data("x"));
    for bad in [
        "",
        "-",
        "0-",
        "-1",
        "0-1-2",
        "00-1",
        "0-01",
        "+0-1",
        "0-+1",
        " 0-1",
        "0-1 ",
        "a-b",
        "0-0",
        "0-2",
        "9-1",
        "18446744073709551616-1",
        "0_1",
    ] {
        assert_eq!(
            store.replay_after(bad),
            Err(ReplayError::Unknown),
            "{bad:?}"
        );
    }
    assert!(store.replay_after("0-1").is_ok());
}

#[test]
fn per_stream_bound_drops_oldest_and_reports_gaps() {
    let mut store = EventStore::new(2, 8);
    let s = store.open_stream();
    let ids: Vec<EventId> = ["e1", "e2", "e3", "e4"]
        .into_iter()
        .map(|d| store.push(s, data(d)))
        .collect();
    assert_eq!(store.bytes(), 4);
    // e1 and e2 were dropped; after e1 we would need e2: a gap.
    assert_eq!(
        store.replay_after(&ids[0].to_string()),
        Err(ReplayError::Gap)
    );
    // After e2, everything needed (e3, e4) is kept.
    let replay = store.replay_after(&ids[1].to_string()).unwrap();
    assert_eq!(
        replay.events,
        vec![
            (ids[2].to_string(), data("e3")),
            (ids[3].to_string(), data("e4"))
        ]
    );
}

#[test]
fn zero_events_per_stream_keeps_nothing() {
    let mut store = EventStore::new(0, 1);
    let s = store.open_stream();
    let a = store.push(s, data("a"));
    let b = store.push(s, data("b"));
    assert_eq!(store.bytes(), 0);
    assert_eq!(store.replay_after(&a.to_string()), Err(ReplayError::Gap));
    assert!(
        store
            .replay_after(&b.to_string())
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn oldest_closed_streams_are_forgotten_first() {
    let mut store = EventStore::new(4, 2);
    let a = store.open_stream();
    let b = store.open_stream();
    let a1 = store.push(a, data("aa"));
    let b1 = store.push(b, data("bbb"));
    store.close_stream(b);
    let c = store.open_stream();
    // `b` was closed, so it goes before the older, open `a`.
    assert_eq!(store.streams(), 2);
    assert_eq!(
        store.replay_after(&b1.to_string()),
        Err(ReplayError::Unknown)
    );
    assert!(store.replay_after(&a1.to_string()).is_ok());
    assert_eq!(store.bytes(), 2);
    // With none closed, the oldest goes.
    let _d = store.open_stream();
    assert_eq!(
        store.replay_after(&a1.to_string()),
        Err(ReplayError::Unknown)
    );
    assert!(store.is_closed(a));
    assert!(!store.is_closed(c));
    assert_eq!(store.bytes(), 0);
    // Pushing to a forgotten stream still yields a fresh id.
    let late = store.push(a, data("zz"));
    assert_eq!(late.to_string(), "0-3");
    assert_eq!(store.bytes(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    Push(usize, usize),
    Close(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Open),
        6 => (any::<usize>(), 0usize..6).prop_map(|(s, len)| Op::Push(s, len)),
        1 => any::<usize>().prop_map(Op::Close),
    ]
}

/// What the model knows about one stream.
struct ModelStream {
    id: StreamId,
    /// Every event stored (pushed while the stream was open), oldest first.
    stored: Vec<(EventId, Bytes)>,
    closed: bool,
    forgotten: bool,
}

proptest! {
    #[test]
    fn replay_returns_exactly_the_kept_suffix(
        max_events in 0usize..5,
        max_streams in 1usize..4,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut store = EventStore::new(max_events, max_streams);
        let mut model: Vec<ModelStream> = Vec::new();
        let mut issued: Vec<EventId> = Vec::new();
        let mut unique = HashSet::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Open => {
                    let id = store.open_stream();
                    model.push(ModelStream { id, stored: Vec::new(), closed: false, forgotten: false });
                    while model.iter().filter(|s| !s.forgotten).count() > max_streams {
                        let victim = model
                            .iter()
                            .position(|s| !s.forgotten && s.closed)
                            .or_else(|| model.iter().position(|s| !s.forgotten));
                        model[victim.unwrap()].forgotten = true;
                    }
                }
                Op::Push(i, len) if !model.is_empty() => {
                    let count = model.len();
                    let s = &mut model[i % count];
                    let bytes = Bytes::from(vec![u8::try_from(n % 251).unwrap(); len]);
                    let id = store.push(s.id, bytes.clone());
                    prop_assert!(unique.insert(id.to_string()), "duplicate id {}", id);
                    prop_assert_eq!(EventId::parse(&id.to_string()), Some(id));
                    prop_assert_eq!(id.stream(), s.id);
                    if !s.closed && !s.forgotten {
                        s.stored.push((id, bytes));
                    }
                    issued.push(id);
                }
                Op::Close(i) if !model.is_empty() => {
                    let count = model.len();
                    let s = &mut model[i % count];
                    store.close_stream(s.id);
                    s.closed = true;
                }
                _ => {}
            }
            let kept: usize = model
                .iter()
                .filter(|s| !s.forgotten)
                .map(|s| {
                    let dropped = s.stored.len().saturating_sub(max_events);
                    s.stored[dropped..].iter().map(|(_, d)| d.len()).sum::<usize>()
                })
                .sum();
            prop_assert_eq!(store.bytes(), kept);
            prop_assert!(store.streams() <= max_streams);
            prop_assert!(store.events() <= max_streams * max_events);
        }
        for id in issued {
            let s = model.iter().find(|s| s.id == id.stream()).unwrap();
            let dropped = s.stored.len().saturating_sub(max_events);
            let want = match s.stored.iter().position(|(e, _)| *e == id) {
                _ if s.forgotten => Err(ReplayError::Unknown),
                None => Err(ReplayError::Unknown),
                Some(i) if i + 1 >= dropped => {
                    let events = s.stored[(i + 1).max(dropped)..]
                        .iter()
                        .map(|(e, d)| (e.to_string(), d.clone()))
                        .collect();
                    Ok(Replay { stream: s.id, events, closed: s.closed })
                }
                Some(_) => Err(ReplayError::Gap),
            };
            prop_assert_eq!(store.replay_after(&id.to_string()), want, "after {}", id);
        }
    }
}
