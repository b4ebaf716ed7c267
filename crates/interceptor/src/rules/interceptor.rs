//! The rule set as an [`Interceptor`], with its rules swappable at run time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use super::ruleset::{RuleSet, RuleStats};
use crate::{Error, InterceptContext, Interceptor, Outcome};

/// Runs a [`RuleSet`] on every message, in both directions.
///
/// The rules can be replaced while messages flow ([`RulesInterceptor::replace`], or a
/// [`RulesWatcher`](crate::RulesWatcher) on the file): each message is evaluated entirely
/// under the rule set that was current when it arrived.
#[derive(Debug)]
pub struct RulesInterceptor {
    /// Read without a lock by every message; replaced whole.
    rules: ArcSwap<RuleSet>,
    /// Taken by replacements, so that none loses another's counters.
    replacing: Mutex<()>,
    priority: i32,
}

impl RulesInterceptor {
    /// An interceptor running `rules`, at priority 0.
    pub fn new(rules: RuleSet) -> Self {
        tracing::info!(
            rules = rules.len(),
            seed = rules.seed(),
            "rules loaded: {} rules, seed {}",
            rules.len(),
            rules.seed()
        );
        Self {
            rules: ArcSwap::from_pointee(rules),
            replacing: Mutex::new(()),
            priority: 0,
        }
    }

    /// The same interceptor at another place in the chain (lower runs first).
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }

    /// Puts `rules` in force for the messages that arrive from now on. Rules whose id is
    /// in both sets keep their counters.
    pub fn replace(&self, mut rules: RuleSet) {
        let _replacing = self.replacing.lock().unwrap_or_else(|e| e.into_inner());
        rules.carry_stats_from(&self.rules.load());
        self.rules.store(Arc::new(rules));
    }

    /// Loads and checks `path` and, when it is valid, puts it in force; returns the number
    /// of rules. An invalid file leaves the rules in force as they were.
    pub fn reload_from(&self, path: &Path) -> Result<usize, Error> {
        let rules = RuleSet::load(path)?;
        let n = rules.len();
        self.replace(rules);
        Ok(n)
    }

    /// Each rule's counters (matches, actions, time), in running order.
    pub fn rule_stats(&self) -> Vec<RuleStats> {
        self.rules().stats()
    }

    fn run(&self, ctx: &InterceptContext<'_>) -> Outcome {
        let rules = self.rules.load();
        if rules.is_empty() {
            return Outcome::Forward;
        }
        rules.evaluate(ctx)
    }
}

#[async_trait]
impl Interceptor for RulesInterceptor {
    fn name(&self) -> &str {
        "rules"
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn decide_now(&self, ctx: &InterceptContext<'_>) -> Option<Outcome> {
        Some(self.run(ctx))
    }

    async fn on_client_message(&self, ctx: &InterceptContext<'_>) -> Outcome {
        self.run(ctx)
    }

    async fn on_server_message(&self, ctx: &InterceptContext<'_>) -> Outcome {
        self.run(ctx)
    }
}
