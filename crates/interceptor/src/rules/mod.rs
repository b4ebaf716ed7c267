//! The rule language: a file of rules, each a `match` and actions, turned into
//! [`Outcome`](crate::Outcome)s. The syntax is documented in `docs/rules.md`.

mod action_de;
mod actions;
mod de;
mod engine;
mod fields;
mod index;
mod interceptor;
mod matcher;
mod model;
mod modify;
mod node;
mod parse;
mod plan;
mod policy_match;
mod random;
mod raw;
mod reload;
mod report;
mod ruleset;
mod template;

pub use engine::Evaluation;
pub use interceptor::RulesInterceptor;
pub use parse::RuleFormat;
pub use policy_match::{Glob, MessageMatch, PossibleMatch, PreparedMessage, ValueCondition};
pub use raw::called_tool;
pub use reload::{DEFAULT_POLL_INTERVAL, RulesWatcher};
pub use report::{FiredRule, FrameReport, RuleCount, RulesReport, describe_outcome, test_rules};
pub use ruleset::{RuleSet, RuleStats, RuleSummary};
