//! Turning a rule's actions into an [`Outcome`] for one message.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use shadowcat_mcp::{ErrorCode, Message, MessageKind};

use super::matcher::Subject;
use super::model::{ActionKind, DelaySpec, MAX_DELAY_MS};
use super::random::SplitMix64;
use super::template::TemplateEnv;
use crate::{Outcome, TransportFault};

/// The answer to a message from a rule: a request gets `make(request)` as a reply; a
/// response is replaced by `make(response)` (same id); a notification is dropped; a batch
/// gets the answers to its requests as one batch.
fn answer(msg: &Message, make: &dyn Fn(&Message) -> Message) -> Outcome {
    match msg.kind() {
        MessageKind::Request => Outcome::Reply(make(msg)),
        MessageKind::Response | MessageKind::Error => Outcome::Replace(make(msg)),
        MessageKind::Batch => {
            let answers: Vec<Message> = msg
                .batch()
                .iter()
                .filter(|m| m.is_request())
                .map(make)
                .collect();
            if answers.is_empty() {
                Outcome::Drop
            } else {
                Outcome::Reply(Message::new_batch(&answers))
            }
        }
        _ => Outcome::Drop,
    }
}

/// Whether the message is a `tools/call` request or a response to one.
fn is_tool_call(s: &Subject<'_, '_>) -> bool {
    let ctx = s.ctx;
    match ctx.message.kind() {
        MessageKind::Request => ctx.message.method() == Some("tools/call"),
        MessageKind::Response | MessageKind::Error => {
            ctx.request_method == Some("tools/call") || ctx.request_tool.is_some()
        }
        _ => false,
    }
}

/// Whether the message is `initialize` or the answer to it.
pub(crate) fn is_initialize(s: &Subject<'_, '_>) -> bool {
    let ctx = s.ctx;
    ctx.message.method() == Some("initialize")
        || (ctx.message.is_response() && ctx.request_method == Some("initialize"))
}

/// The outcome of an action that ends a rule, or `None` when it does not apply to this
/// message (a `tool_error` on anything but a tool call). `current` is the message as the
/// rule's `modify` steps left it, if they changed it.
pub(crate) fn finish(
    kind: &ActionKind,
    rule: &str,
    s: &Subject<'_, '_>,
    current: Option<&Value>,
    modified: Option<&Bytes>,
) -> Option<Outcome> {
    let ctx = s.ctx;
    let msg = ctx.message;
    let request = match current {
        Some(v) => Some(v),
        None if kind_reads_request(kind) => s.value(),
        None => None,
    };
    let env = TemplateEnv {
        request,
        session: ctx.session,
        transport: ctx.transport,
        direction: ctx.direction.as_str(),
        rule,
    };
    Some(match kind {
        ActionKind::Error {
            code,
            message,
            data,
        } => {
            let text = message.render_string(&env);
            let data = data.as_ref().map(|d| d.render(&env));
            answer(msg, &|m| {
                Message::error_response(m.id(), ErrorCode(*code), &text, data.as_ref())
            })
        }
        ActionKind::MockResult(result) => {
            let result = result.render(&env);
            answer(msg, &|m| match m.id() {
                Some(id) => Message::response(id, &result),
                None => Message::error_response(None, ErrorCode::INVALID_REQUEST, "no id", None),
            })
        }
        ActionKind::ToolError(text) => {
            if !is_tool_call(s) {
                return None;
            }
            let result = json!({
                "content": [{"type": "text", "text": text.render_string(&env)}],
                "isError": true,
            });
            answer(msg, &|m| match m.id() {
                Some(id) => Message::response(id, &result),
                None => Message::error_response(None, ErrorCode::INTERNAL_ERROR, "no id", None),
            })
        }
        ActionKind::Drop => Outcome::Drop,
        ActionKind::Duplicate => Outcome::Duplicate,
        ActionKind::Reorder => Outcome::Reorder,
        ActionKind::Malformed => Outcome::Malformed(truncate(modified.unwrap_or(msg.as_bytes()))),
        ActionKind::CutStream => Outcome::Transport(TransportFault::CutStream),
        ActionKind::ExpireSession => Outcome::Transport(TransportFault::ExpireSession),
        ActionKind::Pause {
            timeout_ms,
            drop_on_timeout,
        } => Outcome::Pause {
            by: rule.to_owned(),
            timeout: Duration::from_millis(*timeout_ms),
            on_timeout: Box::new(if *drop_on_timeout {
                Outcome::Drop
            } else {
                Outcome::Forward
            }),
        },
        ActionKind::Continue
        | ActionKind::Forward
        | ActionKind::Modify(_)
        | ActionKind::Delay(_)
        | ActionKind::SlowInitialize(_) => return None,
    })
}

fn kind_reads_request(kind: &ActionKind) -> bool {
    match kind {
        ActionKind::Error { message, data, .. } => {
            message.needs_request() || data.as_ref().is_some_and(|d| d.needs_request())
        }
        ActionKind::MockResult(r) => r.needs_request(),
        ActionKind::ToolError(t) => t.needs_request(),
        _ => false,
    }
}

/// The message cut in the middle (of the text, on a character boundary): never valid JSON,
/// since a JSON object's braces only balance at its end.
fn truncate(bytes: &Bytes) -> Bytes {
    let mut cut = bytes.len() / 2;
    while cut > 0 && bytes.get(cut).is_some_and(|b| (b & 0xC0) == 0x80) {
        cut -= 1;
    }
    let cut = cut.max(1).min(bytes.len());
    bytes.slice(..cut)
}

/// How long a delay lasts this time. `nth` is how many times before this the rule matched in
/// this session (for back-off).
pub(crate) fn sample_delay(spec: &DelaySpec, rng: &mut SplitMix64, nth: u32) -> Duration {
    let ms = match *spec {
        DelaySpec::Fixed(ms) => ms as f64,
        DelaySpec::Uniform(a, b) => {
            let span = (b - a + 1) as f64;
            a as f64 + (rng.next_f64() * span).floor()
        }
        DelaySpec::LogNormal {
            median_ms,
            sigma,
            max_ms,
        } => {
            let ms = median_ms * (sigma * rng.next_normal()).exp();
            ms.min(max_ms.unwrap_or(MAX_DELAY_MS) as f64)
        }
        DelaySpec::Backoff {
            base_ms,
            factor,
            max_ms,
        } => (base_ms as f64 * factor.powi(nth.min(1024) as i32)).min(max_ms as f64),
    };
    Duration::from_micros((ms.clamp(0.0, MAX_DELAY_MS as f64) * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_never_valid_json() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"é","result":{"t":"ééééé"}}"#,
            "{}",
        ] {
            let cut = truncate(&Bytes::from(text));
            assert!(!cut.is_empty() && cut.len() < text.len());
            assert!(std::str::from_utf8(&cut).is_ok());
            assert!(serde_json::from_slice::<Value>(&cut).is_err(), "{cut:?}");
        }
    }

    #[test]
    fn delays_follow_their_distribution() {
        let mut rng = SplitMix64::new(1);
        assert_eq!(
            sample_delay(&DelaySpec::Fixed(500), &mut rng, 0),
            Duration::from_millis(500)
        );
        for _ in 0..1000 {
            let d = sample_delay(&DelaySpec::Uniform(10, 20), &mut rng, 0);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        let backoff = DelaySpec::Backoff {
            base_ms: 100,
            factor: 2.0,
            max_ms: 1000,
        };
        let got: Vec<u128> = (0..6)
            .map(|n| sample_delay(&backoff, &mut rng, n).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        let lognormal = DelaySpec::LogNormal {
            median_ms: 100.0,
            sigma: 0.5,
            max_ms: Some(400),
        };
        let mut samples: Vec<Duration> = (0..2001)
            .map(|_| sample_delay(&lognormal, &mut rng, 0))
            .collect();
        samples.sort();
        let median = samples[1000].as_millis();
        assert!((90..=110).contains(&median), "median {median}");
        assert!(samples[2000] <= Duration::from_millis(400));
    }
}
