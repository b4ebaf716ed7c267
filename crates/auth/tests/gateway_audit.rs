//! The audit log on a real file: one JSON line per decision with who, what, why and when,
//! never the token; the file is private; a full queue drops and counts instead of blocking.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::Value;
use shadowcat_auth::{
    AuditConfig, AuditEvent, AuditLog, AuditOutcome, Principal, RateLimitConfig, RateLimiter,
};

const TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoibWNwIn0.c2lnbmF0dXJlLXNlY3JldA";

fn alice() -> Principal {
    Principal::new("alice")
        .with_token(TOKEN)
        .with_client_id("inspector")
        .with_issuer("https://idp.example.com")
        .with_scopes(["mcp"])
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn open(dir: &tempfile::TempDir, queue: Option<usize>) -> (AuditLog, std::path::PathBuf) {
    let path = dir.path().join("audit.jsonl");
    let config: AuditConfig = serde_yaml::from_str(&format!(
        "path: {}{}",
        path.display(),
        queue.map(|q| format!("\nqueue: {q}")).unwrap_or_default()
    ))
    .unwrap();
    (AuditLog::open(&config).unwrap(), path)
}

#[tokio::test]
async fn every_decision_is_one_json_line_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = open(&dir, None);
    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let who = alice();
    log.record(AuditEvent::authentication(
        Ok(&who),
        Some(client),
        "POST",
        "/mcp",
    ));
    log.record(AuditEvent::authentication(
        Err(&format!("invalid signature on Bearer {TOKEN}")),
        Some(client),
        "POST",
        "/mcp",
    ));
    log.record(
        AuditEvent::policy_denial(
            &who,
            Some("sess-1"),
            Some("tools/call"),
            Some("delete_repo"),
            Some("no-delete"),
            "tool \"delete_repo\" is not allowed",
        )
        .with_client_ip(client),
    );
    let limiter = RateLimiter::new(
        serde_yaml::from_str::<RateLimitConfig>("- {scope: subject, rate: 1/min, burst: 1}")
            .unwrap(),
    )
    .unwrap();
    limiter.check_request(client, Some("alice")).unwrap();
    let refused = limiter.check_request(client, Some("alice")).unwrap_err();
    log.record(AuditEvent::rate_limited(
        &refused,
        Some(&who),
        Some(client),
        None,
        None,
        None,
    ));
    log.flush().await;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("c2lnbmF0dXJl"), "{text}");
    let all = lines(&path);
    assert_eq!(all.len(), 4, "{text}");
    for line in &all {
        let time = line["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
    }
    let ok = &all[0];
    assert_eq!(ok["kind"], "authentication");
    assert_eq!(ok["outcome"], "allow");
    assert_eq!(ok["subject"], "alice");
    assert_eq!(ok["client_id"], "inspector");
    assert_eq!(ok["issuer"], "https://idp.example.com");
    assert_eq!(ok["client_ip"], "198.51.100.7");
    assert_eq!(
        (ok["http_method"].as_str(), ok["path"].as_str()),
        (Some("POST"), Some("/mcp"))
    );
    assert!(ok.get("reason").is_none() && ok.get("status").is_none());

    let failed = &all[1];
    assert_eq!(failed["outcome"], "deny");
    assert_eq!(failed["status"], 401);
    assert_eq!(failed["reason"], "invalid signature on Bearer [token]");
    assert!(failed.get("subject").is_none());

    let denied = &all[2];
    assert_eq!(denied["kind"], "policy_denial");
    assert_eq!(denied["session"], "sess-1");
    assert_eq!(denied["method"], "tools/call");
    assert_eq!(denied["tool"], "delete_repo");
    assert_eq!(denied["rule"], "no-delete");
    assert_eq!(denied["reason"], "tool \"delete_repo\" is not allowed");

    let limited = &all[3];
    assert_eq!(limited["kind"], "rate_limited");
    assert_eq!(limited["status"], 429);
    assert_eq!(limited["rule"], "subject");
    assert_eq!(limited["retry_after"], 60);
    assert_eq!(limited["subject"], "alice");
}

#[tokio::test]
async fn the_file_is_private_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = open(&dir, None);
    log.record(AuditEvent::authentication(
        Err("no token"),
        None,
        "GET",
        "/sse",
    ));
    log.flush().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Dropping the last handle writes what is queued and stops the writer.
    drop(log);
    let (again, _) = open(&dir, None);
    let clone = again.clone();
    clone.record(
        AuditEvent::policy_denial(&alice(), None, Some("ping"), None, None, "no")
            .with_outcome(AuditOutcome::StepUp)
            .with_status(403),
    );
    drop(clone);
    drop(again);
    let all = lines(&path);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["reason"], "no token");
    assert_eq!(all[1]["outcome"], "step_up");
    assert_eq!(all[1]["status"], 403);
}

#[tokio::test]
async fn lines_reach_the_file_soon_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = open(&dir, None);
    log.record(AuditEvent::authentication(
        Err("expired"),
        None,
        "POST",
        "/mcp",
    ));
    let mut waited = Duration::ZERO;
    while std::fs::read_to_string(&path).unwrap().is_empty() {
        assert!(
            waited < Duration::from_secs(2),
            "nothing written after {waited:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    assert_eq!(lines(&path)[0]["reason"], "expired");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_the_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = open(&dir, Some(4));
    let who = alice();
    let mut sent = 0;
    while log.dropped() == 0 {
        log.record(AuditEvent::authentication(Ok(&who), None, "POST", "/mcp"));
        sent += 1;
        assert!(sent < 1_000_000, "the queue never filled");
    }
    // Give the writer time to catch up, then one more record to make it report.
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.record(AuditEvent::authentication(Ok(&who), None, "POST", "/mcp"));
    log.flush().await;
    let all = lines(&path);
    let reported: u64 = all
        .iter()
        .filter(|l| l["kind"] == "audit_dropped")
        .map(|l| l["count"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, log.dropped());
    let written = all.iter().filter(|l| l["kind"] == "authentication").count() as u64;
    assert_eq!(written + log.dropped(), sent + 1);
}

#[test]
fn bad_configuration_names_the_field() {
    let e = AuditLog::open(&serde_yaml::from_str("{path: x, queue: 0}").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("audit.queue: "), "{e}");
    let e = AuditLog::open(&serde_yaml::from_str("{path: ''}").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("audit.path: "), "{e}");
    let e =
        AuditLog::open(&serde_yaml::from_str("{path: /nonexistent-dir/x/audit.jsonl}").unwrap())
            .unwrap_err()
            .to_string();
    assert!(e.contains("/nonexistent-dir/x/audit.jsonl"), "{e}");
    assert!(serde_yaml::from_str::<AuditConfig>("{file: x}").is_err());
}
