//! Interception: what a rule set costs per message.
//!
//! The 50-rule file the load benchmark runs with (`benches/rules/fifty.yaml`) is evaluated on
//! the load benchmark's own messages: a `tools/call` of `echo` with a 16-byte message (client
//! to server) and its answer (server to client, the context naming `tools/call` and `echo` as
//! the request's method and tool, as the proxy does). Only the file's `continue` rules match
//! them, so every message goes on unchanged and every other rule is rejected, many of them
//! after their JSONPath conditions ran: the cost a rule set adds to every message it lets
//! through.
//!
//! - `rules_chain/no_interceptors`: an empty [`InterceptorChain`] (the proxy skips it
//!   entirely; the floor of `InterceptorChain::run`).
//! - `rules_chain/empty_rules`: a chain holding a [`RulesInterceptor`] with no rules.
//! - `rules_chain/fifty`: the chain with the 50 rules, as the proxy runs it.
//! - `rules_evaluate/fifty`: [`RuleSet::evaluate`] alone, without the chain's bookkeeping.
//! - `rules_evaluate/fifty_exact_methods`: the floor, 50 rules that each compare the method
//!   with a text that never matches (`method: other/N`), no JSON read at all.
//!
//! Each has a `request` and a `response` case. The chain's futures never wait here (no rule
//! that matches delays or pauses), so each is polled once with a no-op waker, without a
//! runtime.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, Throughput};
use shadowcat_benches::{echo_message, fixtures};
use shadowcat_interceptor::{
    Direction, InterceptContext, InterceptorChain, Outcome, RuleSet, RulesInterceptor,
};
use shadowcat_mcp::Message;

/// The rule file, next to this crate's manifest.
fn fifty() -> RuleSet {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/fifty.yaml");
    let rules = RuleSet::load(&path).expect("benches/rules/fifty.yaml is a valid rule file");
    assert_eq!(rules.len(), 50, "the file has 50 rules");
    rules
}

/// 50 rules that only compare the method, and never match.
fn exact_methods() -> RuleSet {
    let mut yaml = String::from("rules:\n");
    for n in 0..50 {
        yaml.push_str(&format!(
            "  - {{id: r{n}, match: {{method: other/{n}}}, action: {{type: block}}}}\n"
        ));
    }
    RuleSet::from_yaml_str(&yaml).expect("the generated rules are valid")
}

fn chain_with(rules: Option<RuleSet>) -> InterceptorChain {
    let mut chain = InterceptorChain::new();
    if let Some(rules) = rules {
        chain.add(Arc::new(RulesInterceptor::new(rules)));
    }
    chain
}

/// Runs the chain to completion on one message; it must not wait.
fn run(chain: &InterceptorChain, ctx: &InterceptContext<'_>) -> Outcome {
    let mut future = pin!(chain.run(ctx));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => panic!("no rule that matches the echo messages waits"),
    }
}

fn rules(c: &mut Criterion) {
    let id = 123_456;
    let text = echo_message(id);
    let request = Message::parse(fixtures::echo_call(id, &text)).expect("the fixture is valid");
    let response = Message::parse(fixtures::echo_result(id, &text)).expect("the fixture is valid");
    let cases = [
        (
            "request",
            InterceptContext::new("stdio", Direction::ClientToServer, "stdio", &request),
        ),
        (
            "response",
            InterceptContext::new("stdio", Direction::ServerToClient, "stdio", &response)
                .with_request(Some("tools/call"), Some("echo")),
        ),
    ];

    // The rules let both messages through unchanged, as the load benchmark needs.
    let set = fifty();
    for (name, ctx) in &cases {
        assert_eq!(set.evaluate(ctx), Outcome::Forward, "{name}");
        let traced = set.evaluate_traced(ctx);
        assert!(traced.decided_by.is_none(), "{name}: {traced:?}");
        assert!(
            traced.matched.iter().all(|id| id.starts_with("audit-")),
            "{name}: only the audit rules match: {:?}",
            traced.matched
        );
    }

    let chains = [
        ("no_interceptors", chain_with(None)),
        ("empty_rules", chain_with(Some(RuleSet::empty()))),
        ("fifty", chain_with(Some(fifty()))),
    ];
    let mut group = c.benchmark_group("rules_chain");
    group.throughput(Throughput::Elements(1));
    for (chain_name, chain) in &chains {
        for (name, ctx) in &cases {
            group.bench_function(format!("{chain_name}/{name}"), |b| {
                b.iter(|| run(chain, black_box(ctx)));
            });
        }
    }
    group.finish();

    let floor = exact_methods();
    let mut group = c.benchmark_group("rules_evaluate");
    group.throughput(Throughput::Elements(1));
    for (name, ctx) in &cases {
        group.bench_function(format!("fifty/{name}"), |b| {
            b.iter(|| set.evaluate(black_box(ctx)));
        });
        group.bench_function(format!("fifty_exact_methods/{name}"), |b| {
            b.iter(|| floor.evaluate(black_box(ctx)));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn main() {
    let mut criterion = config().configure_from_args();
    rules(&mut criterion);
    criterion.final_summary();
}
