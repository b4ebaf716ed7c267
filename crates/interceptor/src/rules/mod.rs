//! The rule language: a file of rules, each a `match` and actions, turned into
//! [`Outcome`](crate::Outcome)s. The syntax is documented in `docs/rules.md`.

mod action_de;
mod actions;
mod de;
mod engine;
mod index;
mod interceptor;
mod matcher;
mod model;
mod modify;
mod node;
mod parse;
mod random;
mod reload;
mod report;
mod ruleset;
mod template;

pub use engine::Evaluation;
pub use interceptor::RulesInterceptor;
pub use parse::RuleFormat;
pub use reload::{DEFAULT_POLL_INTERVAL, RulesWatcher};
pub use report::{FiredRule, FrameReport, RuleCount, RulesReport, describe_outcome, test_rules};
pub use ruleset::{RuleSet, RuleStats, RuleSummary};
