//! Which rules to try on a message, worked out once per kind of message and remembered.
//!
//! Most of what decides whether a rule applies is the same for every message of one kind:
//! its direction and kind, its method, the method of the request a response answers, the
//! transport and the tool. For each combination of these seen so far, a rule set keeps its
//! *plan*: the rules that can still match, in running order, each marked as matching for
//! certain or as depending on the session or the payload (only those are tested per
//! message). A plan is a pure function of these fields and of the rules, so remembering it
//! changes no answer.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::index::Index;
use super::matcher::{Early, Subject, kind_of};
use super::ruleset::Rule;
use crate::Direction;

/// The most plans a rule set remembers; past that, plans are worked out per message.
const MAX_PLANS: usize = 1024;

/// The longest key remembered (the texts of a message's fields, with their lengths).
const MAX_KEY: usize = 128;

/// One rule of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The rule's place in the running order.
    pub(crate) rule: usize,
    /// Whether its session, `params` or `json` conditions must still be tested; otherwise
    /// it matches.
    pub(crate) check: bool,
}

/// The rules to try, in running order.
pub(crate) type Plan = Arc<[Step]>;

type Map = HashMap<Box<[u8]>, Plan, foldhash::fast::RandomState>;

/// The plans of a rule set, by key.
pub(crate) struct Plans {
    map: ArcSwap<Map>,
    /// Whether any rule tests the tool (otherwise the tool is left out of the key).
    uses_tool: bool,
}

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans")
            .field("remembered", &self.map.load().len())
            .field("uses_tool", &self.uses_tool)
            .finish()
    }
}

/// A key being written into a buffer.
struct Key<'b> {
    bytes: &'b mut [u8; MAX_KEY],
    len: usize,
}

impl Key<'_> {
    fn push(&mut self, b: u8) -> Option<()> {
        *self.bytes.get_mut(self.len)? = b;
        self.len += 1;
        Some(())
    }

    /// A text, or its absence, told apart from any other by its length.
    fn text(&mut self, text: Option<&str>) -> Option<()> {
        match text {
            None => self.push(u8::MAX),
            Some(t) => {
                let len = u8::try_from(t.len()).ok().filter(|&l| l < u8::MAX)?;
                self.push(len)?;
                let end = self.len + t.len();
                self.bytes
                    .get_mut(self.len..end)?
                    .copy_from_slice(t.as_bytes());
                self.len = end;
                Some(())
            }
        }
    }
}

impl Plans {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        Self {
            map: ArcSwap::from_pointee(Map::default()),
            uses_tool: rules.iter().any(|r| uses_tool(&r.matcher)),
        }
    }

    /// The key of a message, written into `buf`: the fields a plan depends on. `None` when
    /// they are too long to remember.
    fn key<'b>(&self, s: &Subject<'_, '_>, buf: &'b mut [u8; MAX_KEY]) -> Option<&'b [u8]> {
        let ctx = s.ctx;
        let mut key = Key { bytes: buf, len: 0 };
        let direction = match ctx.direction {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        };
        let kind = kind_of(s.kind).map_or(7, |k| k as u8);
        key.push(direction << 4 | kind)?;
        key.text(s.method)?;
        key.text(ctx.request_method.filter(|_| s.is_response()))?;
        key.text(Some(ctx.transport))?;
        key.text(if self.uses_tool { s.tool() } else { None })?;
        let len = key.len;
        Some(&key.bytes[..len])
    }

    /// The plan for the message.
    pub(crate) fn get(&self, rules: &[Rule], index: &Index, s: &Subject<'_, '_>) -> Plan {
        let mut buf = [0; MAX_KEY];
        let Some(key) = self.key(s, &mut buf) else {
            return work_out(rules, index, s);
        };
        if let Some(plan) = self.map.load().get(key) {
            return plan.clone();
        }
        let plan = work_out(rules, index, s);
        if self.map.load().len() >= MAX_PLANS {
            return plan;
        }
        self.map.rcu(|map| {
            let mut map = Map::clone(map);
            if map.len() < MAX_PLANS {
                map.insert(key.into(), plan.clone());
            }
            map
        });
        plan
    }
}

/// The plan for the message, from scratch.
fn work_out(rules: &[Rule], index: &Index, s: &Subject<'_, '_>) -> Plan {
    let (_, candidates) = index.candidates(s, 0);
    candidates
        .filter_map(|i| match rules[i].matcher.early(s) {
            Early::No => None,
            Early::Maybe => Some(Step {
                rule: i,
                check: true,
            }),
            Early::Yes => Some(Step {
                rule: i,
                check: false,
            }),
        })
        .collect()
}

fn uses_tool(m: &super::model::MatchSpec) -> bool {
    m.tool.is_some()
        || m.all.iter().chain(&m.any).flatten().any(uses_tool)
        || m.not.as_deref().is_some_and(uses_tool)
}
