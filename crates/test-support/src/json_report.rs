//! Reading the one-line JSON reports that the interop client scripts print.

use serde_json::Value;

use crate::ProcessOutput;

/// The single JSON object a client script printed on stdout.
///
/// # Panics
///
/// When stdout holds anything but exactly one line of JSON; the message shows the run.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use shadowcat_test_support::{json_stdout, run_with_timeout};
///
/// let out = run_with_timeout(
///     Command::new("echo").arg(r#"{"ok": true}"#),
///     Duration::from_secs(10),
/// );
/// assert_eq!(json_stdout(&out)["ok"], true);
/// ```
pub fn json_stdout(out: &ProcessOutput) -> Value {
    let lines: Vec<&str> = out.stdout_lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one JSON line on stdout from {out}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
}

/// The strings of a JSON array (other items and non-arrays give nothing).
pub fn json_strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
