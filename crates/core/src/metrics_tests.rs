use std::collections::HashMap;
use std::sync::Arc;

use super::*;

/// The samples of a rendering, keyed by `name{labels}` as written, after checking that
/// every sample's family has `# HELP` and `# TYPE` lines before it.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut typed = HashMap::new();
    let mut helped = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.iter().any(|h| h == name), "TYPE before HELP: {line}");
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(typed.contains_key(family), "sample without TYPE: {line}");
            let value: f64 = value.parse().unwrap();
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "duplicate {series}"
            );
        }
    }
    samples
}

#[test]
fn empty_metrics_render_headers_and_unlabelled_zeros() {
    let samples = parse(&Metrics::new().render());
    assert_eq!(samples.len(), 3, "{samples:?}");
    assert_eq!(samples["shadowcat_sessions_active"], 0.0);
    assert_eq!(samples["shadowcat_sessions_rejected_total"], 0.0);
    assert_eq!(samples["shadowcat_upstream_failures_total"], 0.0);
}

#[test]
fn requests_are_counted_by_bounded_method_and_outcome() {
    let m = Metrics::new();
    m.observe_request("tools/call", Outcome::Ok, Duration::from_millis(1));
    m.observe_request("tools/call", Outcome::Ok, Duration::from_millis(2));
    m.observe_request("tools/call", Outcome::Error, Duration::from_millis(2));
    m.observe_request("notifications/initialized", Outcome::Ok, Duration::ZERO);
    m.observe_request("notifications/cancelled", Outcome::Ok, Duration::ZERO);
    m.observe_request("x/\"evil\"\nname", Outcome::Rejected, Duration::ZERO);
    m.observe_request("tools/unknown", Outcome::Failed, Duration::ZERO);
    m.observe_request("server/discover", Outcome::Ok, Duration::ZERO);
    let s = parse(&m.render());
    let get = |method: &str, outcome: &str| {
        s[&format!("shadowcat_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}}")]
    };
    assert_eq!(get("tools/call", "ok"), 2.0);
    assert_eq!(get("tools/call", "error"), 1.0);
    assert_eq!(get("notification", "ok"), 2.0);
    assert_eq!(get("other", "rejected"), 1.0);
    assert_eq!(get("other", "failed"), 1.0);
    assert_eq!(get("server/discover", "ok"), 1.0);
    let request_series = s
        .keys()
        .filter(|k| k.starts_with("shadowcat_requests_total"))
        .count();
    assert_eq!(request_series, 6);
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_equals_count() {
    let m = Metrics::new();
    let latencies_ms = [0.05, 0.1, 0.3, 1.0, 7.0, 7.0, 600.0, 20_000.0];
    for ms in latencies_ms {
        m.observe_request("ping", Outcome::Ok, Duration::from_secs_f64(ms / 1000.0));
    }
    let s = parse(&m.render());
    let bucket = |le: &str| {
        s[&format!("shadowcat_request_duration_seconds_bucket{{method=\"ping\",le=\"{le}\"}}")]
    };
    let mut previous = 0.0;
    for (bound, le) in BUCKETS {
        let n = bucket(le);
        assert!(n >= previous, "not cumulative at {le}");
        let expected = latencies_ms
            .iter()
            .filter(|ms| **ms * 1e6 <= bound as f64)
            .count() as f64;
        assert_eq!(n, expected, "le={le}");
        previous = n;
    }
    // Inclusive upper bounds: exactly 0.1 ms falls in le="0.0001".
    assert_eq!(bucket("0.0001"), 2.0);
    assert_eq!(bucket("10"), 7.0);
    assert_eq!(bucket("+Inf"), 8.0);
    assert_eq!(
        s["shadowcat_request_duration_seconds_count{method=\"ping\"}"],
        8.0
    );
    let sum = s["shadowcat_request_duration_seconds_sum{method=\"ping\"}"];
    let want: f64 = latencies_ms.iter().sum::<f64>() / 1000.0;
    assert!((sum - want).abs() < 1e-6, "{sum} vs {want}");
    assert!(!s.keys().any(|k| k.contains("method=\"tools/call\"")));
}

#[test]
fn http_sessions_and_upstream_counters() {
    let m = Arc::new(Metrics::new());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    m.http_response(200);
                    m.session_opened("streamable-http");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    m.http_response(404);
    m.http_response(404);
    m.http_response(42);
    m.http_response(u16::MAX);
    m.session_opened("legacy-sse");
    m.session_opened("carrier-pigeon");
    m.session_closed(CloseReason::Idle);
    m.session_closed(CloseReason::Deleted);
    m.session_closed(CloseReason::UpstreamGone);
    m.session_rejected();
    m.upstream_failure();
    m.upstream_failure();
    let s = parse(&m.render());
    assert_eq!(s["shadowcat_http_responses_total{code=\"200\"}"], 1000.0);
    assert_eq!(s["shadowcat_http_responses_total{code=\"404\"}"], 2.0);
    assert_eq!(
        s.keys()
            .filter(|k| k.starts_with("shadowcat_http_"))
            .count(),
        2
    );
    assert_eq!(
        s["shadowcat_sessions_opened_total{transport=\"streamable-http\"}"],
        1000.0
    );
    assert_eq!(
        s["shadowcat_sessions_opened_total{transport=\"legacy-sse\"}"],
        1.0
    );
    assert_eq!(
        s["shadowcat_sessions_opened_total{transport=\"other\"}"],
        1.0
    );
    assert_eq!(s["shadowcat_sessions_closed_total{reason=\"idle\"}"], 1.0);
    assert_eq!(
        s["shadowcat_sessions_closed_total{reason=\"deleted\"}"],
        1.0
    );
    assert_eq!(
        s["shadowcat_sessions_closed_total{reason=\"upstream_gone\"}"],
        1.0
    );
    assert_eq!(s["shadowcat_sessions_active"], 999.0);
    assert_eq!(s["shadowcat_sessions_rejected_total"], 1.0);
    assert_eq!(s["shadowcat_upstream_failures_total"], 2.0);
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("plain"), "plain");
    assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    let mut out = String::new();
    sample(&mut out, "x", &[("k", "q\"")], 3);
    assert_eq!(out, "x{k=\"q\\\"\"} 3\n");
}

#[test]
fn every_known_method_keeps_its_label() {
    for (i, method) in METHODS[..NOTIFICATION].iter().enumerate() {
        assert_eq!(method_index(method), i);
    }
    assert_eq!(method_index("notifications/progress"), NOTIFICATION);
    assert_eq!(method_index("notification"), OTHER);
    assert_eq!(method_index(""), OTHER);
}
