//! The gateway's security options of `shadowcat reverse`: a configuration file with its
//! `auth`, `policy`, `rate_limits`, `audit` and `upstream` sections, and flags for the
//! common case (one issuer, its JWKS, the gateway's audience).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use shadowcat_core::AdmissionConfig;
use shadowcat_core::auth::{AuditConfig, ResourceServerConfig};

/// Authentication, policy, rate limits and audit of the gateway.
#[derive(Debug, Args)]
pub(crate) struct AuthOptions {
    /// A gateway configuration file (YAML) with `auth`, `policy`, `rate_limits`, `audit`
    /// and `upstream` sections (docs/security.md); the `--auth-*` flags override its
    /// `auth` section.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Require a bearer token (a JWT) issued by this authorization server (its `iss`).
    #[arg(long, value_name = "URL", requires = "auth_jwks_url")]
    auth_issuer: Option<String>,
    /// The audience tokens must name: the gateway's canonical resource URI (default: the
    /// resource, or `http://LISTEN/mcp`).
    #[arg(long, value_name = "URI")]
    auth_audience: Option<String>,
    /// Where the issuer's signing keys are (https, or http on a loopback address).
    #[arg(long, value_name = "URL")]
    auth_jwks_url: Option<String>,
    /// The gateway's canonical resource URI, as clients reach it (default: the audience,
    /// or `http://LISTEN/mcp`).
    #[arg(long, value_name = "URI")]
    auth_resource: Option<String>,
    /// A scope every request needs (repeatable); others get 403 `insufficient_scope`.
    #[arg(long = "auth-scope", value_name = "SCOPE")]
    auth_scopes: Vec<String>,
    /// Trust the certificates in this PEM file (besides the public roots) when fetching
    /// keys, metadata and tokens.
    #[arg(long, value_name = "FILE")]
    auth_ca_file: Option<PathBuf>,
    /// Write one JSON line per authentication decision and denial to this file (`-`:
    /// standard error).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
}

impl AuthOptions {
    /// The admission configuration, `None` when nothing asks for one.
    pub(crate) fn admission(&self, listen: SocketAddr) -> Result<Option<AdmissionConfig>, String> {
        let mut config = match &self.config {
            Some(path) => AdmissionConfig::load(path).map_err(|e| e.to_string())?,
            None => AdmissionConfig::default(),
        };
        if let Some(issuer) = &self.auth_issuer {
            let resource = self
                .auth_resource
                .clone()
                .or_else(|| self.auth_audience.clone())
                .unwrap_or_else(|| format!("http://{listen}/mcp"));
            let mut server = ResourceServerConfig::new(resource, issuer.clone());
            server.jwks_url = self.auth_jwks_url.clone();
            server.audiences = self.auth_audience.iter().cloned().collect();
            config.resource_server = Some(server);
        } else if self.auth_jwks_url.is_some() || self.auth_audience.is_some() {
            match config.resource_server.as_mut() {
                Some(server) => {
                    if let Some(url) = &self.auth_jwks_url {
                        server.jwks_url = Some(url.clone());
                    }
                    if let Some(aud) = &self.auth_audience {
                        server.audiences = vec![aud.clone()];
                    }
                }
                None => {
                    return Err(
                        "--auth-jwks-url and --auth-audience need --auth-issuer (or an `auth` section in --config)"
                            .into(),
                    );
                }
            }
        }
        if let Some(server) = config.resource_server.as_mut() {
            if let Some(resource) = &self.auth_resource {
                server.resource = resource.clone();
            }
            server
                .required_scopes
                .extend(self.auth_scopes.iter().cloned());
            if let Some(ca) = &self.auth_ca_file {
                server.ca_file = Some(ca.clone());
            }
            server.validate().map_err(|e| e.to_string())?;
        } else if !self.auth_scopes.is_empty() || self.auth_resource.is_some() {
            return Err("--auth-scope and --auth-resource need --auth-issuer".into());
        }
        if let Some(path) = &self.audit_log {
            config.audit = Some(AuditConfig {
                path: path.display().to_string(),
                queue: None,
            });
        }
        Ok((!config.is_empty()).then_some(config))
    }
}
