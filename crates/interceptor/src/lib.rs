//! Interception for Shadowcat: the [`Interceptor`] trait and the [`InterceptorChain`] that
//! runs interceptors in priority order on every message, in both directions.
//!
//! An interceptor looks at one message with its [`InterceptContext`] and returns an
//! [`Outcome`]: forward it (unchanged or modified), answer the sender instead, drop it,
//! delay it, duplicate or reorder it, corrupt it, hold it for a person to act on, or ask the
//! transport for a fault (cut an SSE stream, expire the session). The proxy pipeline carries
//! the outcome out.
//!
//! [`RuleSet`] is the rule language (YAML or JSON, documented in `docs/rules.md`) turned
//! into outcomes; [`RulesInterceptor`] runs it in the chain, [`RulesWatcher`] reloads it when
//! its file changes, and [`test_rules`] shows what it would do on recorded messages.

mod chain;
mod error;
mod held;
mod rules;

pub use chain::{
    Direction, InterceptContext, Interceptor, InterceptorChain, InterceptorStats, Outcome,
    TransportFault,
};
pub use error::{Error, Result, RuleError};
pub use held::{
    DEFAULT_MAX_HELD, Decision, HeldDetail, HeldError, HeldInfo, HeldMessages, HeldSummary,
};
pub use rules::{
    DEFAULT_POLL_INTERVAL, Evaluation, FiredRule, FrameReport, RuleCount, RuleFormat, RuleSet,
    RuleStats, RuleSummary, RulesInterceptor, RulesReport, RulesWatcher, called_tool,
    describe_outcome, test_rules,
};
pub use rules::{Glob, MessageMatch, PossibleMatch, PreparedMessage, ValueCondition};
