//! A loaded, checked rule set.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::de::Step;
use super::fields::{PathStep, Paths, add_pattern};
use super::index::Index;
use super::model::{ActionKind, ActionSpec, DelaySpec, MatchSpec};
use super::parse::{RuleFormat, parse};
use super::plan::Plans;
use super::random::{SplitMix64, fresh_seed};
use crate::{Error, RuleError};

/// Counters of one rule.
#[derive(Debug, Default)]
pub(crate) struct RuleCounters {
    pub(crate) matches: AtomicU64,
    pub(crate) actions: AtomicU64,
    pub(crate) nanos: AtomicU64,
}

/// One rule, ready to run.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) priority: i64,
    pub(crate) matcher: MatchSpec,
    pub(crate) actions: Vec<ActionSpec>,
    pub(crate) counters: Arc<RuleCounters>,
    /// Whether its actions are timed: all but `continue` and `forward`, which do nothing
    /// to time.
    pub(crate) timed: bool,
    /// Whether its actions are all `continue`s that always fire: matching is all it does.
    pub(crate) only_continues: bool,
    /// For back-off delays: how often the rule matched in each session.
    pub(crate) backoff: Option<Mutex<HashMap<String, u32>>>,
}

/// What one rule has done so far (for metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RuleStats {
    /// The rule's id.
    pub id: String,
    /// Messages its `match` held for.
    pub matches: u64,
    /// Messages it acted on (at least one action fired, after probabilities).
    pub actions: u64,
    /// Time spent carrying out its actions, in nanoseconds (not measured for a rule whose
    /// actions only `continue` or `forward`, which take no time of their own).
    pub nanos: u64,
}

/// A rule as `rules validate` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RuleSummary {
    /// The id.
    pub id: String,
    /// The description, when given.
    pub description: Option<String>,
    /// Whether it runs.
    pub enabled: bool,
    /// Its place in the order (lower first).
    pub priority: i64,
    /// Its actions' names, in order (`block`, `mock`, `delay`, `drop`, …).
    pub actions: Vec<&'static str>,
}

/// A checked set of rules, in the order they run.
///
/// Everything is checked when the rules are loaded (ids unique, patterns and JSONPaths
/// valid, probabilities in range, templates well formed, version supported); evaluating a
/// message cannot fail.
///
/// ```
/// use shadowcat_interceptor::{Direction, InterceptContext, Outcome, RuleSet};
/// use shadowcat_mcp::Message;
///
/// let rules = RuleSet::from_yaml_str(r#"
/// rules:
///   - id: no-deletes
///     match: {method: tools/call, tool: {glob: "delete_*"}}
///     action: {type: block, code: -32001, message: "deleting is disabled"}
/// "#).unwrap();
/// let msg = Message::parse(
///     r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_file"}}"#,
/// ).unwrap();
/// let ctx = InterceptContext::new("s1", Direction::ClientToServer, "stdio", &msg);
/// let Outcome::Reply(answer) = rules.evaluate(&ctx) else { panic!() };
/// assert_eq!(
///     answer.as_bytes().as_ref(),
///     br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"deleting is disabled"}}"#,
/// );
/// ```
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    /// Which rules can match which messages.
    pub(crate) index: Index,
    /// The rules to try, by kind of message.
    pub(crate) plans: Plans,
    /// The simple paths the rules' conditions look at.
    pub(crate) paths: Paths,
    pub(crate) seed: u64,
    pub(crate) rng: Mutex<SplitMix64>,
}

impl RuleSet {
    /// No rules: every message is forwarded.
    pub fn empty() -> Self {
        Self::build(Vec::new(), Some(0))
    }

    /// Reads rules from YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Self, RuleError> {
        Self::parse(text, RuleFormat::Yaml, None)
    }

    /// Reads rules from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, RuleError> {
        Self::parse(text, RuleFormat::Json, None)
    }

    /// Reads rules from text; `file` (when given) is named in errors.
    pub fn parse(text: &str, format: RuleFormat, file: Option<&Path>) -> Result<Self, RuleError> {
        let spec = parse(text, format, file)?;
        let rules = spec
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let backoff = r
                    .actions
                    .iter()
                    .any(|a| matches!(a.kind, ActionKind::Delay(DelaySpec::Backoff { .. })))
                    .then(|| Mutex::new(HashMap::new()));
                let timed = r
                    .actions
                    .iter()
                    .any(|a| !matches!(a.kind, ActionKind::Continue | ActionKind::Forward));
                let only_continues = r
                    .actions
                    .iter()
                    .all(|a| matches!(a.kind, ActionKind::Continue) && a.probability.is_none());
                Rule {
                    timed,
                    only_continues,
                    priority: r.priority.unwrap_or(i as i64),
                    id: r.id,
                    description: r.description,
                    enabled: r.enabled,
                    matcher: r.matcher,
                    actions: r.actions,
                    counters: Arc::default(),
                    backoff,
                }
            })
            .collect();
        Ok(Self::build(rules, spec.seed))
    }

    /// Reads a rule file: `.json` as JSON, anything else as YAML.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text, RuleFormat::for_path(path), Some(path))?)
    }

    fn build(mut rules: Vec<Rule>, seed: Option<u64>) -> Self {
        // A stable sort: equal priorities keep file order.
        rules.sort_by_key(|r| r.priority);
        let seed = seed.unwrap_or_else(fresh_seed);
        let mut paths = Paths::default();
        for rule in &mut rules {
            add_paths(&mut rule.matcher, &mut paths);
        }
        paths.finish();
        Self {
            index: Index::build(&rules),
            plans: Plans::new(&rules),
            paths,
            rules,
            seed,
            rng: Mutex::new(SplitMix64::new(seed)),
        }
    }

    /// How many rules it has (enabled or not).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether it has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The seed of its random choices: the file's `seed`, or one drawn at load time.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The rules in the order they run.
    pub fn rules(&self) -> Vec<RuleSummary> {
        self.rules
            .iter()
            .map(|r| RuleSummary {
                id: r.id.clone(),
                description: r.description.clone(),
                enabled: r.enabled,
                priority: r.priority,
                actions: r.actions.iter().map(|a| a.kind.name()).collect(),
            })
            .collect()
    }

    /// Each rule's counters, in running order.
    pub fn stats(&self) -> Vec<RuleStats> {
        self.rules
            .iter()
            .map(|r| RuleStats {
                id: r.id.clone(),
                matches: r.counters.matches.load(Relaxed),
                actions: r.counters.actions.load(Relaxed),
                nanos: r.counters.nanos.load(Relaxed),
            })
            .collect()
    }

    /// Keeps counting where `old` left off for the rules that have the same id in both.
    pub fn carry_stats_from(&mut self, old: &RuleSet) {
        for rule in &mut self.rules {
            if let Some(prev) = old.rules.iter().find(|r| r.id == rule.id) {
                rule.counters = prev.counters.clone();
            }
        }
    }

    /// Starts the random sequence over from the seed.
    pub fn reset_random(&self) {
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) = SplitMix64::new(self.seed);
        for rule in &self.rules {
            if let Some(b) = &rule.backoff {
                b.lock().unwrap_or_else(|p| p.into_inner()).clear();
            }
        }
    }
}

/// Adds the simple paths of `m`'s conditions and `params` pattern to `paths`, and notes
/// where each lies.
fn add_paths(m: &mut MatchSpec, paths: &mut Paths) {
    if let Some(conds) = &mut m.json {
        for c in &mut conds.0 {
            c.node = c.path.steps.as_ref().map(|steps| {
                steps.iter().fold(0, |node, step| {
                    let step = match step {
                        Step::Member(name) => PathStep::Member(name),
                        Step::Index(i) => PathStep::Index(*i),
                    };
                    paths.add(node, step)
                })
            });
        }
    }
    if let Some(pattern) = &m.params {
        let node = paths.add(0, PathStep::Member("params"));
        add_pattern(paths, node, pattern);
        m.params_node = Some(node);
    }
    let children = m.all.iter_mut().chain(m.any.iter_mut()).flatten();
    for c in children.chain(m.not.as_deref_mut()) {
        add_paths(c, paths);
    }
}
