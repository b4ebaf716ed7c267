//! Hot reload of a rule file: valid changes replace the rules, invalid ones are logged and
//! leave the rules in force, messages already started keep their rules.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shadowcat_interceptor::{
    Direction, InterceptContext, Interceptor, Outcome, RuleSet, RulesInterceptor, RulesWatcher,
};
use shadowcat_mcp::Message;

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn block_rules(message: &str) -> String {
    format!(
        "rules:\n  - id: gate\n    match: {{method: ping}}\n    action: {{type: block, message: {message}}}\n"
    )
}

async fn answer(rules: &RulesInterceptor) -> String {
    let msg = Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
    let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
    match rules.on_client_message(&ctx).await {
        Outcome::Reply(m) => {
            let v: Value = serde_json::from_slice(m.as_bytes()).unwrap();
            v["error"]["message"].as_str().unwrap().to_owned()
        }
        other => format!("{other:?}"),
    }
}

async fn wait_for(rules: &RulesInterceptor, want: &str) {
    let start = Instant::now();
    while answer(rules).await != want {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rules never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write(path: &Path, text: &str) {
    // Write then rename, as editors do, so the watcher never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn valid_changes_apply_and_invalid_ones_keep_the_old_rules() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    write(&path, &block_rules("one"));
    let rules = Arc::new(RulesInterceptor::new(RuleSet::load(&path).unwrap()));
    assert_eq!(rules.name(), "rules");
    let watcher =
        RulesWatcher::spawn_with_interval(rules.clone(), &path, Duration::from_millis(50));
    assert_eq!(answer(&rules).await, "one");

    // A message that started under the old rules finishes under them.
    let started = rules.rules();
    write(&path, &block_rules("two"));
    wait_for(&rules, "two").await;
    let msg = Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
    let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
    let Outcome::Reply(old) = started.evaluate(&ctx) else {
        panic!()
    };
    assert!(String::from_utf8_lossy(old.as_bytes()).contains("\"one\""));
    assert!(
        logs.text()
            .contains(&format!("rules reloaded from {}: 1 rules", path.display()))
    );
    // Counters of a rule that stays carry over.
    assert!(
        rules.rule_stats()[0].matches >= 2,
        "{:?}",
        rules.rule_stats()
    );

    // An invalid file: logged precisely, the rules in force stay.
    write(
        &path,
        "rules:\n  - id: gate\n    match: {method: {regex: \"(\"}}\n    action: {type: block}\n",
    );
    let start = Instant::now();
    while !logs.text().contains("keeping the previous rules") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no error logged: {}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("keeping the previous rules"))
        .unwrap();
    assert!(
        line.contains(&format!("{}:3:", path.display()))
            && line.contains("rule \"gate\": match.method.regex: invalid regex"),
        "{line}"
    );
    assert_eq!(answer(&rules).await, "two");

    // Fixed again: applied.
    write(&path, &block_rules("three"));
    wait_for(&rules, "three").await;

    // Once the watcher is dropped, changes are no longer picked up.
    drop(watcher);
    write(&path, &block_rules("four"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(answer(&rules).await, "three");
}

#[tokio::test]
async fn an_in_place_rewrite_with_the_same_size_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.json");
    let json = |m: &str| {
        format!(
            r#"{{"rules":[{{"id":"g","match":{{"method":"ping"}},"action":{{"type":"block","message":"{m}"}}}}]}}"#
        )
    };
    std::fs::write(&path, json("aaa")).unwrap();
    let rules = Arc::new(RulesInterceptor::new(RuleSet::load(&path).unwrap()));
    let _watcher =
        RulesWatcher::spawn_with_interval(rules.clone(), &path, Duration::from_millis(50));
    // Same length, written in place right away (same second).
    std::fs::write(&path, json("bbb")).unwrap();
    wait_for(&rules, "bbb").await;
    assert!(rules.reload_from(&dir.path().join("missing.json")).is_err());
    assert_eq!(answer(&rules).await, "bbb");
}
