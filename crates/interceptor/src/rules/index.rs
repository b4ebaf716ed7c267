//! Which rules can possibly match a message, decided from the few fields every message has
//! (direction, kind, method, the answered request's method, transport) before any rule runs.
//!
//! For each of these fields the index keeps, per value, the set of rules whose `match` does
//! not rule that value out. A message's candidates are the rules in every one of its sets;
//! only they are evaluated, in their running order. Each set is a necessary condition
//! (`all` and `any` are followed, `not` is not), so a rule left out could not have matched.

use super::de::TextMatch;
use super::matcher::{Proven, Subject, kind_of};
use super::model::{DirectionSpec, KindSpec, MatchSpec};
use super::ruleset::Rule;
use crate::Direction;

/// A set of rules, one bit per rule in running order.
type Bits = Box<[u64]>;

/// The value a message has for a text field, as the index sees it.
#[derive(Clone, Copy)]
enum Key<'t> {
    /// A text some rule compares with exactly.
    Known(&'t str),
    /// Any other text.
    Other,
    /// The field is absent.
    Absent,
}

/// The sets of one text field.
#[derive(Debug)]
struct TextIndex {
    /// Sorted by text.
    known: Vec<(String, Bits)>,
    other: Bits,
    absent: Bits,
}

impl TextIndex {
    fn build(rules: &[Rule], words: usize, field: fn(&MatchSpec) -> Option<&TextMatch>) -> Self {
        let mut texts = Vec::new();
        for rule in rules {
            texts_in(&rule.matcher, field, &mut texts);
        }
        texts.sort_unstable();
        texts.dedup();
        let set = |key: Key<'_>| bits(rules, words, |m| admits_text(m, field, key));
        Self {
            known: texts
                .iter()
                .map(|t| ((*t).to_owned(), set(Key::Known(t))))
                .collect(),
            other: set(Key::Other),
            absent: set(Key::Absent),
        }
    }

    /// The set for `text`, and whether it decides the field's own test exactly (it does
    /// unless the text is one no rule names, which globs and regexes must then judge).
    fn get(&self, text: Option<&str>) -> (&[u64], bool) {
        let Some(text) = text else {
            return (&self.absent, true);
        };
        match self.known.binary_search_by(|(t, _)| t.as_str().cmp(text)) {
            Ok(i) => (&self.known[i].1, true),
            Err(_) => (&self.other, false),
        }
    }
}

/// The candidate sets of a rule set.
#[derive(Debug)]
pub(crate) struct Index {
    words: usize,
    /// By [`Direction`]: client to server, server to client.
    direction: [Bits; 2],
    /// By kind: request, notification, response, error, batch, anything else.
    kind: [Bits; 6],
    method: TextIndex,
    request_method: TextIndex,
    transport: TextIndex,
}

impl Index {
    pub(crate) fn build(rules: &[Rule]) -> Self {
        let words = rules.len().div_ceil(64);
        let direction = [Direction::ClientToServer, Direction::ServerToClient]
            .map(|d| bits(rules, words, |m| admits_direction(m, d)));
        let kind = [
            Some(KindSpec::Request),
            Some(KindSpec::Notification),
            Some(KindSpec::Response),
            Some(KindSpec::Error),
            Some(KindSpec::Batch),
            None,
        ]
        .map(|k| bits(rules, words, |m| admits_kind(m, k)));
        Self {
            words,
            direction,
            kind,
            method: TextIndex::build(rules, words, |m| m.method.as_ref()),
            request_method: TextIndex::build(rules, words, |m| m.request_method.as_ref()),
            transport: TextIndex::build(rules, words, |m| m.transport.as_ref()),
        }
    }

    /// The rules that may match the message, from rule `from` on, in running order, and
    /// which of their top-level tests these sets already decided for all of them.
    pub(crate) fn candidates<'i>(
        &'i self,
        s: &Subject<'_, '_>,
        from: usize,
    ) -> (Proven, impl Iterator<Item = usize> + 'i) {
        let ctx = s.ctx;
        let direction = &self.direction[match ctx.direction {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }];
        let kind = &self.kind[match kind_of(s.kind) {
            Some(KindSpec::Request) => 0,
            Some(KindSpec::Notification) => 1,
            Some(KindSpec::Response) => 2,
            Some(KindSpec::Error) => 3,
            Some(KindSpec::Batch) => 4,
            None => 5,
        }];
        let (method, method_known) = self.method.get(s.method);
        let (request_method, request_method_known) = self
            .request_method
            .get(ctx.request_method.filter(|_| s.is_response()));
        let (transport, transport_known) = self.transport.get(Some(ctx.transport));
        let proven = Proven {
            shape: true,
            method: method_known,
            request_method: request_method_known,
            transport: transport_known,
        };
        let rules = (from / 64..self.words).flat_map(move |w| {
            let mut word = direction[w] & kind[w] & method[w] & request_method[w] & transport[w];
            if w == from / 64 {
                word &= u64::MAX.checked_shl((from % 64) as u32).unwrap_or(0);
            }
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + bit)
            })
        });
        (proven, rules)
    }
}

/// The set of enabled rules whose matcher `admits`.
fn bits(rules: &[Rule], words: usize, admits: impl Fn(&MatchSpec) -> bool) -> Bits {
    let mut out = vec![0u64; words];
    for (i, rule) in rules.iter().enumerate() {
        if rule.enabled && admits(&rule.matcher) {
            out[i / 64] |= 1 << (i % 64);
        }
    }
    out.into_boxed_slice()
}

/// Whether `m`'s own condition and those of its `all` and `any` children can all hold.
fn admits(m: &MatchSpec, own: impl Fn(&MatchSpec) -> bool + Copy) -> bool {
    own(m)
        && m.all
            .as_ref()
            .is_none_or(|all| all.iter().all(|c| admits(c, own)))
        && m.any
            .as_ref()
            .is_none_or(|any| any.iter().any(|c| admits(c, own)))
}

fn admits_direction(m: &MatchSpec, d: Direction) -> bool {
    admits(m, |m| match m.direction {
        None | Some(DirectionSpec::Both) => true,
        Some(DirectionSpec::ClientToServer) => d == Direction::ClientToServer,
        Some(DirectionSpec::ServerToClient) => d == Direction::ServerToClient,
    })
}

fn admits_kind(m: &MatchSpec, k: Option<KindSpec>) -> bool {
    admits(m, |m| match &m.kind {
        None => true,
        Some(kinds) => k.is_some_and(|k| kinds.0.contains(&k)),
    })
}

fn admits_text(m: &MatchSpec, field: fn(&MatchSpec) -> Option<&TextMatch>, key: Key<'_>) -> bool {
    admits(m, |m| match (field(m), key) {
        (None, _) => true,
        (Some(t), Key::Known(text)) => t.is_match(text),
        (Some(t), Key::Other) => !t.exact_only(),
        (Some(_), Key::Absent) => false,
    })
}

/// Every exact text `field` is compared with in `m` and its children.
fn texts_in<'m>(
    m: &'m MatchSpec,
    field: fn(&MatchSpec) -> Option<&TextMatch>,
    out: &mut Vec<&'m str>,
) {
    if let Some(t) = field(m) {
        t.exact_texts(out);
    }
    let children = m.all.iter().chain(&m.any).flatten();
    for c in children.chain(m.not.as_deref()) {
        texts_in(c, field, out);
    }
}
