//! `shadowcat forward stdio --to URL --oauth` as the client under test of the official MCP
//! conformance suite's OAuth client scenarios (`conformance client --scenario auth/…`).
//!
//! Shadowcat is a bridge, so the command the suite runs is a real MCP client,
//! `interop/auth-client.py` (the Python `mcp` 1.x stdio client), which launches
//! `shadowcat forward stdio --to URL --oauth --oauth-authorize fetch …` and initializes,
//! lists the tools and calls `test-tool` through it. The Python client knows nothing of OAuth:
//! every discovery, registration, authorization and token request the suite checks is
//! Shadowcat's. Each test runs one scenario and requires the suite to pass it (exit 0, no
//! FAILURE or WARNING check), plus what the scenario is about.
//!
//! The suite, Node 22 and the Python venv are pinned under `interop/` and installed by
//! `scripts/install-interop.sh`; without them these tests fail (they do not skip).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use shadowcat_test_support::{
    ConformanceClientRun, interop_dir, python_mcp1, run_conformance_client,
};
use tempfile::TempDir;

/// The limit for one scenario, the suite's start and stop included.
const TIMEOUT: Duration = Duration::from_secs(90);

/// One scenario run: what the suite checked, and what the Python client reported.
struct Scenario {
    run: ConformanceClientRun,
    /// `auth-client.py`'s report (`ok`, `tools`, `calls`, `error`), `Null` when it wrote none.
    client: Value,
    /// The token store Shadowcat used.
    store: PathBuf,
    _dir: TempDir,
}

impl Scenario {
    /// Runs `scenario` with `auth-client.py` and `extra` options of the script.
    fn run(scenario: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = dir.path().join("tokens.json");
        let report = dir.path().join("client-report.json");
        let mut command = vec![
            path(&python_mcp1()),
            path(&interop_dir().join("auth-client.py")),
            "--shadowcat".into(),
            env!("CARGO_BIN_EXE_shadowcat").into(),
            "--store".into(),
            path(&store),
            "--report".into(),
            path(&report),
        ];
        command.extend(extra.iter().map(|s| (*s).to_owned()));
        let run = run_conformance_client(
            &command.join(" "),
            scenario,
            &dir.path().join("results"),
            &[],
            TIMEOUT,
        );
        let client = std::fs::read_to_string(&report)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        Self {
            run,
            client,
            store,
            _dir: dir,
        }
    }

    fn report(&self) -> String {
        format!("{}\nclient report: {}", self.run.report(), self.client)
    }

    /// The suite passed the scenario.
    fn assert_passed(&self) {
        assert!(self.run.passed(), "{}", self.report());
    }

    /// The suite passed it, and the client's whole session went through: tools listed
    /// and `test-tool` called without error.
    fn assert_session_worked(&self) {
        self.assert_passed();
        assert_eq!(self.client["ok"], true, "{}", self.report());
        let calls = self.client["calls"].as_array().cloned().unwrap_or_default();
        assert!(
            calls
                .iter()
                .any(|c| c["tool"] == "test-tool" && c["is_error"] == false),
            "{}",
            self.report()
        );
    }

    fn count(&self, id: &str) -> usize {
        self.run.statuses(id).len()
    }

    fn assert_check(&self, id: &str, status: &str) {
        let statuses = self.run.statuses(id);
        assert!(
            !statuses.is_empty() && statuses.iter().all(|s| s == status),
            "check {id}: {statuses:?}\n{}",
            self.report()
        );
    }
}

fn path(p: &Path) -> String {
    let text = p.to_string_lossy().into_owned();
    assert!(
        !text.contains(' '),
        "the suite splits its command at spaces: {text}"
    );
    text
}

/// A scenario whose whole flow must work: discovery, registration (or a client id),
/// authorization with PKCE, the token, then the session.
fn full_flow(scenario: &str) -> Scenario {
    let run = Scenario::run(scenario, &[]);
    run.assert_session_worked();
    run.assert_check("pkce-verifier-matches-challenge", "SUCCESS");
    run.assert_check("valid-bearer-token", "SUCCESS");
    run
}

#[test]
fn metadata_default_with_the_token_store_readable_only_by_its_owner() {
    let run = full_flow("auth/metadata-default");
    run.assert_check("prm-pathbased-requested", "SUCCESS");
    run.assert_check("client-registration", "SUCCESS");
    // The tokens were stored, privately, under the server's URL.
    let text = std::fs::read_to_string(&run.store).expect("the token store exists");
    let stored: Value = serde_json::from_str(&text).expect("the token store is JSON");
    let servers = stored["servers"].as_object().expect("servers");
    assert_eq!(servers.len(), 1, "{text}");
    let (server, entry) = servers.iter().next().expect("one server");
    assert!(server.ends_with("/mcp"), "{server}");
    assert!(
        entry["tokens"]["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("test-token")),
        "{text}"
    );
    assert_eq!(entry["client"]["client_id"], "test-client-id", "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&run.store)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{:o}", mode & 0o777);
    }
}

#[test]
fn metadata_var1_openid_configuration_without_resource_metadata_in_the_challenge() {
    full_flow("auth/metadata-var1");
}

#[test]
fn metadata_var2_root_resource_metadata_and_an_issuer_with_a_path() {
    full_flow("auth/metadata-var2");
}

#[test]
fn metadata_var3_custom_resource_metadata_and_openid_configuration_appended() {
    full_flow("auth/metadata-var3");
}

#[test]
fn basic_cimd_uses_the_client_id_metadata_document() {
    let run = full_flow("auth/basic-cimd");
    run.assert_check("cimd-client-id-used", "SUCCESS");
    assert_eq!(run.count("client-registration"), 0, "{}", run.report());
}

#[test]
fn scope_from_www_authenticate() {
    full_flow("auth/scope-from-www-authenticate")
        .assert_check("scope-from-www-authenticate", "SUCCESS");
}

#[test]
fn scope_from_scopes_supported() {
    full_flow("auth/scope-from-scopes-supported")
        .assert_check("scope-from-scopes-supported", "SUCCESS");
}

#[test]
fn scope_omitted_when_undefined() {
    full_flow("auth/scope-omitted-when-undefined")
        .assert_check("scope-omitted-when-undefined", "SUCCESS");
}

#[test]
fn scope_step_up_on_insufficient_scope() {
    let run = full_flow("auth/scope-step-up");
    run.assert_check("scope-step-up-initial", "SUCCESS");
    run.assert_check("scope-step-up-escalation", "SUCCESS");
    assert_eq!(run.count("authorization-request"), 2, "{}", run.report());
}

#[test]
fn scope_retry_limit_does_not_loop() {
    let run = Scenario::run("auth/scope-retry-limit", &[]);
    run.assert_passed();
    run.assert_check("scope-retry-limit", "SUCCESS");
    // One authorization: the server asked for a scope already granted, so no step-up.
    assert_eq!(run.count("scope-retry-auth-attempt"), 1, "{}", run.report());
    // The refused request reached the client as an error.
    assert_eq!(run.client["ok"], false, "{}", run.report());
    let error = run.client["error"].as_str().unwrap_or_default();
    assert!(error.contains("403"), "{}", run.report());
}

#[test]
fn token_endpoint_auth_basic() {
    full_flow("auth/token-endpoint-auth-basic")
        .assert_check("token-endpoint-auth-method", "SUCCESS");
}

#[test]
fn token_endpoint_auth_post() {
    full_flow("auth/token-endpoint-auth-post")
        .assert_check("token-endpoint-auth-method", "SUCCESS");
}

#[test]
fn token_endpoint_auth_none_with_the_resource_parameter() {
    let run = full_flow("auth/token-endpoint-auth-none");
    run.assert_check("token-endpoint-auth-method", "SUCCESS");
    run.assert_check("resource-parameter-in-authorization", "SUCCESS");
    run.assert_check("resource-parameter-in-token", "SUCCESS");
    run.assert_check("resource-parameter-consistency", "SUCCESS");
}

#[test]
fn pre_registration_uses_the_configured_client() {
    let run = full_flow("auth/pre-registration");
    run.assert_check("pre-registration-auth", "SUCCESS");
    assert_eq!(run.count("client-registration"), 0, "{}", run.report());
}

#[test]
fn backcompat_2025_03_26_metadata_at_the_server_origin() {
    full_flow("auth/2025-03-26-oauth-metadata-backcompat");
}

#[test]
fn backcompat_2025_03_26_default_endpoints() {
    let run = Scenario::run("auth/2025-03-26-oauth-endpoint-fallback", &[]);
    run.assert_session_worked();
    run.assert_check("authorization-request", "SUCCESS");
    run.assert_check("token-request", "SUCCESS");
}

#[test]
fn resource_mismatch_is_refused_before_authorization() {
    let run = Scenario::run("auth/resource-mismatch", &[]);
    run.assert_passed();
    run.assert_check("resource-mismatch-rejected", "SUCCESS");
    assert_eq!(run.count("authorization-request"), 0, "{}", run.report());
    let error = run.client["error"].as_str().unwrap_or_default();
    assert!(error.contains("evil.example.com"), "{}", run.report());
}

#[test]
fn offline_access_asked_for_where_offered() {
    let run = full_flow("auth/offline-access-scope");
    run.assert_check("sep-2207-offline-access-requested", "SUCCESS");
}

#[test]
fn offline_access_not_asked_for_where_not_offered() {
    full_flow("auth/offline-access-not-supported")
        .assert_check("sep-2207-offline-access-not-requested", "SUCCESS");
}

#[test]
fn client_credentials_with_a_client_secret() {
    let run = Scenario::run("auth/client-credentials-basic", &[]);
    run.assert_session_worked();
    run.assert_check("client-credentials-basic-auth", "SUCCESS");
}

#[test]
fn client_credentials_with_a_private_key_jwt() {
    let run = Scenario::run("auth/client-credentials-jwt", &[]);
    run.assert_session_worked();
    run.assert_check("client-credentials-jwt-verified", "SUCCESS");
}

#[test]
fn cross_app_access_identity_assertion_grant() {
    let run = Scenario::run("auth/cross-app-access-complete-flow", &[]);
    run.assert_session_worked();
    run.assert_check("complete-flow-token-exchange", "SUCCESS");
    run.assert_check("complete-flow-jwt-bearer", "SUCCESS");
}

#[test]
fn browser_mode_opens_the_url_with_the_configured_command() {
    // The "browser" is a script that follows the redirects, as a browser would after the
    // user approved.
    // The suite runs its command line with a shell: the quotes keep the browser command
    // one option value.
    let browser = format!(
        "'{} {}'",
        path(&python_mcp1()),
        path(&interop_dir().join("auth-browser.py"))
    );
    let run = Scenario::run("auth/metadata-default", &["--browser", &browser]);
    run.assert_session_worked();
    let args = run.client["shadowcat_args"].to_string();
    assert!(args.contains("\"browser\""), "{args}");
}
