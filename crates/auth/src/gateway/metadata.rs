//! RFC 9728 protected resource metadata: the document and where it is served.

use serde_json::{Value, json};

use super::resource_config::ResourceServerConfig;

/// The well-known path prefix of RFC 9728.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata of one protected resource.
#[derive(Debug)]
pub(crate) struct ResourceMetadata {
    pub(crate) document: Value,
    /// The path-specific well-known path first (when the resource has a path), then the
    /// root one.
    pub(crate) paths: Vec<String>,
    /// The absolute URL of the first path.
    pub(crate) url: String,
}

impl ResourceMetadata {
    /// The metadata of a configuration already validated (its resource is an absolute URL).
    pub(crate) fn new(config: &ResourceServerConfig, resource: &http::Uri) -> Self {
        let mut document = json!({
            "resource": config.resource,
            "authorization_servers": config.effective_authorization_servers(),
            "bearer_methods_supported": ["header"],
        });
        if !config.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(config.scopes_supported);
        }
        if let Some(name) = &config.resource_name {
            document["resource_name"] = json!(name);
        }

        // RFC 9728 §3.1: the well-known segment goes between the host and the path; a path
        // of just "/" counts as none.
        let path = resource.path();
        let mut paths = Vec::with_capacity(2);
        if !path.is_empty() && path != "/" {
            paths.push(format!("{WELL_KNOWN}{path}"));
        }
        paths.push(WELL_KNOWN.to_owned());
        let origin = format!(
            "{}://{}",
            resource.scheme_str().unwrap_or("https"),
            resource.authority().map_or("", |a| a.as_str())
        );
        let url = format!("{origin}{}", paths[0]);
        Self {
            document,
            paths,
            url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(resource: &str) -> ResourceMetadata {
        let mut config = ResourceServerConfig::new(resource, "https://auth.example.com");
        config.scopes_supported = vec!["mcp:read".to_owned()];
        config.resource_name = Some("Example MCP".to_owned());
        ResourceMetadata::new(&config, &resource.parse().unwrap())
    }

    #[test]
    fn a_resource_with_a_path_gets_the_path_specific_document_first() {
        let m = metadata("https://mcp.example.com/mcp");
        assert_eq!(
            m.paths,
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            m.url,
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(m.document["resource"], "https://mcp.example.com/mcp");
        assert_eq!(
            m.document["authorization_servers"],
            json!(["https://auth.example.com"])
        );
        assert_eq!(m.document["bearer_methods_supported"], json!(["header"]));
        assert_eq!(m.document["scopes_supported"], json!(["mcp:read"]));
        assert_eq!(m.document["resource_name"], "Example MCP");
    }

    #[test]
    fn a_resource_without_a_path_has_only_the_root_document() {
        for resource in ["https://mcp.example.com", "https://mcp.example.com/"] {
            let m = metadata(resource);
            assert_eq!(m.paths, ["/.well-known/oauth-protected-resource"]);
            assert_eq!(
                m.url,
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            );
        }
        let m = metadata("http://127.0.0.1:8080/a/b");
        assert_eq!(
            m.url,
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b"
        );
    }
}
