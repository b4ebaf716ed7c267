use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn registry(max: usize) -> Registry<u32> {
    Registry::new(
        Limits::default()
            .with_max_sessions(max)
            .with_idle_timeout(Some(MIN))
            .with_max_pending(2),
    )
}

#[test]
fn defaults() {
    let limits = Limits::default();
    assert_eq!(limits.max_sessions, 1024);
    assert_eq!(limits.idle_timeout, Some(Duration::from_secs(1800)));
    assert_eq!(limits.max_pending, 4096);
}

#[test]
fn create_get_peek_update_remove() {
    let reg = registry(4);
    let t0 = Instant::now();
    let id = reg
        .create(
            7,
            |info| {
                info.transport = TransportKind::LegacySse;
                info.upstream = Some("stdio #1".into());
            },
            t0,
        )
        .unwrap();
    let info = reg.info(&id).unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.transport, TransportKind::LegacySse);
    assert_eq!(info.upstream.as_deref(), Some("stdio #1"));
    assert_eq!(info.created, t0);

    assert_eq!(reg.peek(&id), Some(7));
    assert_eq!(reg.info(&id).unwrap().last_activity, t0);
    assert_eq!(reg.get(&id, t0 + MIN), Some(7));
    assert_eq!(reg.info(&id).unwrap().last_activity, t0 + MIN);
    // Time never goes backwards for a session.
    reg.get(&id, t0);
    assert_eq!(reg.info(&id).unwrap().last_activity, t0 + MIN);

    let got = reg.update(&id, |info| {
        info.upstream_session_id = Some("up-1".into());
        info.id = SessionId::parse("forged").unwrap();
        3
    });
    assert_eq!(got, Some(3));
    let info = reg.info(&id).unwrap();
    assert_eq!(info.upstream_session_id.as_deref(), Some("up-1"));
    assert_eq!(info.id, id);
    assert_eq!(reg.list(), vec![info]);

    let other = SessionId::parse("nope").unwrap();
    assert_eq!(reg.get(&other, t0), None);
    assert_eq!(reg.update(&other, |_| ()), None);
    assert!(!reg.was_removed(&id));

    assert_eq!(reg.remove(&id), Some(7));
    assert_eq!(reg.remove(&id), None);
    assert!(reg.was_removed(&id));
    assert!(!reg.was_removed(&other));
    assert!(reg.is_empty());
    let stats = reg.stats();
    assert_eq!((stats.active, stats.opened, stats.closed), (0, 1, 1));
}

#[test]
fn full_registry_evicts_idle_sessions_before_refusing() {
    let reg = registry(2);
    let t0 = Instant::now();
    let a = reg.create(1, |_| (), t0).unwrap();
    let b = reg
        .create(2, |_| (), t0 + MIN + Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        reg.create(3, |_| (), t0 + MIN),
        Err(Error::TooManySessions { max: 2 })
    );
    // At t0 + 2 min + 1 s, `a` has been idle past the timeout; `b` has not.
    let c = reg
        .create(3, |_| (), t0 + 2 * MIN + Duration::from_secs(1))
        .unwrap();
    assert_eq!(reg.peek(&a), None);
    assert!(reg.was_removed(&a));
    assert_eq!(reg.peek(&b), Some(2));
    assert_eq!(reg.peek(&c), Some(3));
    let stats = reg.stats();
    assert_eq!(stats.active, 2);
    assert_eq!(stats.opened, 3);
    assert_eq!(stats.evicted_idle, 1);
    assert_eq!(stats.rejected_full, 1);
    assert_eq!(stats.closed, 0);
}

#[test]
fn pending_requests_are_bounded_and_keep_a_session_alive() {
    let reg = registry(2);
    let t0 = Instant::now();
    let id = reg.create(1, |_| (), t0).unwrap();
    reg.begin_request(&id, t0).unwrap();
    reg.begin_request(&id, t0).unwrap();
    assert_eq!(
        reg.begin_request(&id, t0),
        Err(Error::TooManyPending { max: 2 })
    );
    assert_eq!(reg.info(&id).unwrap().pending, 2);
    assert_eq!(reg.next_expiry(), None);
    assert!(reg.expire(t0 + 10 * MIN).is_empty());

    reg.end_request(&id, t0);
    reg.end_request(&id, t0);
    reg.end_request(&id, t0);
    assert_eq!(reg.info(&id).unwrap().pending, 0);
    assert_eq!(reg.next_expiry(), Some(t0 + MIN));
    assert_eq!(reg.expire(t0 + MIN), vec![]);
    assert_eq!(reg.expire(t0 + 2 * MIN), vec![(id.clone(), 1)]);
    assert_eq!(reg.begin_request(&id, t0), Err(Error::UnknownSession));
}

#[test]
fn no_timeout_means_no_expiry() {
    let reg: Registry<u8> = Registry::new(Limits::default().with_idle_timeout(None));
    let t0 = Instant::now();
    reg.create(0, |_| (), t0).unwrap();
    assert_eq!(reg.next_expiry(), None);
    assert!(reg.expire(t0 + 1000 * MIN).is_empty());
}

#[test]
fn removed_ids_are_remembered_for_a_bounded_number() {
    let reg: Registry<u8> = Registry::new(Limits::default().with_remember_removed(2));
    let t0 = Instant::now();
    let ids: Vec<SessionId> = (0..3).map(|_| reg.create(0, |_| (), t0).unwrap()).collect();
    for id in &ids {
        reg.remove(id);
    }
    assert!(!reg.was_removed(&ids[0]));
    assert!(reg.was_removed(&ids[1]));
    assert!(reg.was_removed(&ids[2]));
}

#[test]
fn concurrent_creates_respect_the_limit() {
    let reg = std::sync::Arc::new(registry(50));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                (0..20)
                    .filter(|_| reg.create(0, |_| (), t0).is_ok())
                    .count()
            })
        })
        .collect();
    let made: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(made, 50);
    assert_eq!(reg.len(), 50);
    assert_eq!(reg.stats().rejected_full, 110);
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    Get(usize),
    Begin(usize),
    End(usize),
    Remove(usize),
    Expire,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Create),
        2 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Begin),
        1 => any::<usize>().prop_map(Op::End),
        1 => any::<usize>().prop_map(Op::Remove),
        1 => Just(Op::Expire),
        3 => (0u64..90).prop_map(Op::Advance),
    ]
}

/// The model: id -> (value, last activity in seconds, pending).
type Model = HashMap<SessionId, (u32, u64, usize)>;

fn pick(ids: &[SessionId], i: usize) -> Option<SessionId> {
    (!ids.is_empty()).then(|| ids[i % ids.len()].clone())
}

proptest! {
    #[test]
    fn registry_matches_a_model(max in 1usize..6, ops in prop::collection::vec(op(), 1..120)) {
        let reg = registry(max);
        let t0 = Instant::now();
        let mut secs = 0u64;
        let mut model = Model::new();
        let mut ids: Vec<SessionId> = Vec::new();
        let mut next_value = 0u32;
        let timeout = MIN.as_secs();
        let idle = |model: &Model, secs: u64| -> Vec<SessionId> {
            let mut v: Vec<SessionId> = model
                .iter()
                .filter(|(_, (_, last, pending))| *pending == 0 && secs - last > timeout)
                .map(|(id, _)| id.clone())
                .collect();
            v.sort();
            v
        };
        for op in ops {
            let now = t0 + Duration::from_secs(secs);
            match op {
                Op::Create => {
                    next_value += 1;
                    let result = reg.create(next_value, |_| (), now);
                    if model.len() >= max {
                        for id in idle(&model, secs) {
                            model.remove(&id);
                        }
                    }
                    if model.len() >= max {
                        prop_assert_eq!(result, Err(Error::TooManySessions { max }));
                    } else {
                        let id = result.unwrap();
                        model.insert(id.clone(), (next_value, secs, 0));
                        ids.push(id);
                    }
                }
                Op::Get(i) => if let Some(id) = pick(&ids, i) {
                    let got = reg.get(&id, now);
                    let want = model.get_mut(&id).map(|e| { e.1 = secs; e.0 });
                    prop_assert_eq!(got, want);
                },
                Op::Begin(i) => if let Some(id) = pick(&ids, i) {
                    let got = reg.begin_request(&id, now);
                    match model.get_mut(&id) {
                        None => prop_assert_eq!(got, Err(Error::UnknownSession)),
                        Some(e) if e.2 >= 2 => prop_assert_eq!(got, Err(Error::TooManyPending { max: 2 })),
                        Some(e) => { prop_assert_eq!(got, Ok(())); e.2 += 1; e.1 = secs; }
                    }
                },
                Op::End(i) => if let Some(id) = pick(&ids, i) {
                    reg.end_request(&id, now);
                    if let Some(e) = model.get_mut(&id) {
                        e.2 = e.2.saturating_sub(1);
                        e.1 = secs;
                    }
                },
                Op::Remove(i) => if let Some(id) = pick(&ids, i) {
                    prop_assert_eq!(reg.remove(&id), model.remove(&id).map(|e| e.0));
                    prop_assert!(reg.was_removed(&id));
                },
                Op::Expire => {
                    let want = idle(&model, secs);
                    let mut got: Vec<SessionId> = reg.expire(now).into_iter().map(|(id, v)| {
                        assert_eq!(model.get(&id).map(|e| e.0), Some(v));
                        id
                    }).collect();
                    got.sort();
                    for id in &want {
                        model.remove(id);
                    }
                    prop_assert_eq!(got, want);
                }
                Op::Advance(s) => secs += s,
            }
            prop_assert!(reg.len() <= max);
            prop_assert_eq!(reg.len(), model.len());
            let stats = reg.stats();
            prop_assert_eq!(
                stats.opened,
                stats.active as u64 + stats.closed + stats.evicted_idle
            );
            let want_expiry = model
                .values()
                .filter(|e| e.2 == 0)
                .map(|e| t0 + Duration::from_secs(e.1) + MIN)
                .min();
            prop_assert_eq!(reg.next_expiry(), want_expiry);
        }
    }
}
