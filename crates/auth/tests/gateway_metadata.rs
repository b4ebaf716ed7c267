//! RFC 9728 protected resource metadata and the challenges that point to it, and the
//! resource server's configuration as the gateway's YAML `auth:` section gives it.

use http::StatusCode;
use serde_json::json;
use shadowcat_auth::{Error, ResourceServer, ResourceServerConfig};

const YAML: &str = r#"
resource: https://mcp.example.com/mcp
issuer: https://auth.example.com
jwks_url: https://auth.example.com/.well-known/jwks.json
authorization_servers: [https://auth.example.com, https://login.example.com]
scopes_supported: [mcp:read, mcp:tools]
required_scopes: [mcp:read]
resource_name: Example MCP
leeway_secs: 10
"#;

fn gateway() -> ResourceServer {
    let config: ResourceServerConfig = serde_yaml::from_str(YAML).expect("valid YAML");
    ResourceServer::new(config).expect("a valid configuration")
}

#[test]
fn the_metadata_document_describes_the_resource() {
    let gateway = gateway();
    assert_eq!(
        gateway.metadata(),
        json!({
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": ["https://auth.example.com", "https://login.example.com"],
            "scopes_supported": ["mcp:read", "mcp:tools"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Example MCP",
        })
    );
    assert_eq!(
        gateway.metadata_paths(),
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
    assert_eq!(
        gateway.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(gateway.config().leeway_secs, 10);
}

#[test]
fn step_up_challenges_name_the_scopes_needed() {
    let gateway = gateway();
    let challenge = gateway.insufficient_scope(
        &["mcp:admin".to_owned()],
        "deleting repositories needs \"mcp:admin\"",
    );
    assert_eq!(challenge.status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.www_authenticate,
        "Bearer error=\"insufficient_scope\", error_description=\"deleting repositories needs 'mcp:admin'\", \
         resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:admin\""
    );
    assert_eq!(
        challenge.message,
        "deleting repositories needs \"mcp:admin\""
    );
}

#[test]
fn configuration_errors_name_the_field() {
    let cases = [
        (
            "jwks_url: http://auth.example.com/jwks.json",
            "auth.jwks_url",
        ),
        ("algorithms: [HS256]", "auth.algorithms[0]"),
        ("ca_file: /nonexistent/ca.pem", "auth.ca_file"),
        (
            "resource: https://mcp.example.com/mcp?tenant=1",
            "auth.resource",
        ),
    ];
    for (line, field) in cases {
        let key = line.split(':').next().expect("a key");
        let yaml: String = YAML
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}:")))
            .chain(std::iter::once(line))
            .collect::<Vec<_>>()
            .join("\n");
        let config: ResourceServerConfig = serde_yaml::from_str(&yaml).expect("valid YAML");
        match ResourceServer::new(config) {
            Err(Error::Config { field: named, .. }) => assert_eq!(named, field, "{line}"),
            other => panic!("{line}: expected a config error, got {other:?}"),
        }
    }
    let unknown = serde_yaml::from_str::<ResourceServerConfig>("resource: x\njwks: y\n")
        .expect_err("an unknown field");
    assert!(unknown.to_string().contains("jwks"), "{unknown}");
}
