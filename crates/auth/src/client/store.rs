//! The token store: one JSON file, readable only by its owner, holding per MCP server the
//! client registration and the tokens, written atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Tokens from a token endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthTokens {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// The refresh token, if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When it was issued, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
    /// The scopes granted (as the token endpoint said, or as asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl OAuthTokens {
    /// A bearer token without expiry or refresh token.
    pub fn bearer(access_token: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            token_type: "Bearer".into(),
            refresh_token: None,
            expires_at: None,
            issued_at: None,
            scope: None,
        }
    }

    /// Whether the access token expires within `margin` of now (a token without an
    /// expiry never does).
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= unix_now().saturating_add(margin.as_secs()))
    }

    /// Whether it is time to refresh: within `margin` of the expiry, or within half the
    /// lifetime for a token that lives shorter than twice the margin (so a short-lived
    /// token is not refreshed before every request).
    pub fn refresh_due(&self, margin: Duration) -> bool {
        let margin = match (self.expires_at, self.issued_at) {
            (Some(expires), Some(issued)) => {
                let half = expires.saturating_sub(issued) / 2;
                Duration::from_secs(margin.as_secs().min(half))
            }
            _ => margin,
        };
        self.expires_within(margin)
    }
}

/// The seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A client registered with (or known to) an authorization server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthClientRegistration {
    /// The issuer it is registered with.
    pub issuer: String,
    /// The client id (a URL for a client id metadata document).
    pub client_id: String,
    /// The client secret, for a confidential client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// The redirect URI it was registered with (dynamic registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Whether it came from dynamic registration (and may be registered again).
    #[serde(default)]
    pub dynamic: bool,
}

impl OAuthClientRegistration {
    /// A client `client_id` of the authorization server `issuer`, without a secret
    /// (`none` client authentication).
    pub fn public(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            token_endpoint_auth_method: "none".into(),
            redirect_uri: None,
            dynamic: false,
        }
    }
}

impl std::fmt::Debug for OAuthClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientRegistration")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("dynamic", &self.dynamic)
            .finish()
    }
}

/// What the store keeps for one MCP server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredAuthorization {
    /// The authorization server's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Its token endpoint (for refreshing without discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The `resource` parameter the tokens were asked for with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The scopes asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OAuthClientRegistration>,
    /// The tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<OAuthTokens>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    #[serde(default)]
    servers: BTreeMap<String, StoredAuthorization>,
}

/// A JSON file of [`StoredAuthorization`]s keyed by MCP server URL.
///
/// The file and its directory are created readable only by their owner (modes 0600 and
/// 0700); a file found readable by others is narrowed to 0600 with a warning. Every save
/// writes a new file beside the old one and renames it over, so a crash leaves one or
/// the other, never half of each. Processes sharing a file do not lock it: the last save
/// of a server's entry wins, other entries are read again just before each save.
///
/// ```
/// use shadowcat_auth::{OAuthTokenStore, OAuthTokens, StoredAuthorization};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = OAuthTokenStore::new(dir.path().join("tokens.json"));
/// let mut entry = StoredAuthorization::default();
/// entry.tokens = Some(OAuthTokens::bearer("t"));
/// store.save("https://mcp.example/mcp", &entry).unwrap();
/// assert_eq!(store.load("https://mcp.example/mcp").unwrap(), Some(entry));
/// ```
#[derive(Debug, Clone)]
pub struct OAuthTokenStore {
    path: PathBuf,
}

impl OAuthTokenStore {
    /// The store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The default file: `$XDG_STATE_HOME/shadowcat/oauth-tokens.json`, or
    /// `~/.local/state/shadowcat/oauth-tokens.json`; `None` without either variable.
    pub fn default_path() -> Option<PathBuf> {
        let state = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".local/state"))
            })?;
        Some(state.join("shadowcat").join("oauth-tokens.json"))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry of the MCP server at `server`, if any.
    pub fn load(&self, server: &str) -> Result<Option<StoredAuthorization>> {
        Ok(self.read()?.servers.remove(server))
    }

    /// Saves the entry of the MCP server at `server`, keeping the others.
    pub fn save(&self, server: &str, entry: &StoredAuthorization) -> Result<()> {
        let mut file = self.read()?;
        file.version = 1;
        file.servers.insert(server.to_owned(), entry.clone());
        self.write(&file)
    }

    /// Forgets the entry of the MCP server at `server`.
    pub fn remove(&self, server: &str) -> Result<()> {
        let mut file = self.read()?;
        if file.servers.remove(server).is_some() {
            self.write(&file)?;
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn read(&self) -> Result<StoreFile> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::default()),
            Err(e) => return Err(self.io(e)),
        };
        narrow_permissions(&self.path);
        serde_json::from_str(&text).map_err(|e| Error::Config {
            field: self.path.display().to_string(),
            message: format!("the token store is not valid: {e}"),
        })
    }

    fn write(&self, file: &StoreFile) -> Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).map_err(|e| self.io(e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "oauth-tokens.json".into());
        let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let text = serde_json::to_vec_pretty(file).map_err(|e| Error::Config {
            field: self.path.display().to_string(),
            message: format!("cannot serialize the token store: {e}"),
        })?;
        let _ = fs::remove_file(&temporary);
        let written = (|| {
            let mut out = private_file(&temporary)?;
            out.write_all(&text)?;
            out.write_all(b"\n")?;
            out.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written.map_err(|e| self.io(e))
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// A token file others may read is narrowed to 0600, with a warning.
#[cfg(unix)]
fn narrow_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::metadata(path) else { return };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the token store was readable by others (mode {:o}); narrowing it to 0600", mode & 0o777);
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
fn narrow_permissions(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str) -> StoredAuthorization {
        StoredAuthorization {
            issuer: Some("http://as".into()),
            token_endpoint: Some("http://as/token".into()),
            resource: Some("http://mcp/mcp".into()),
            scope: Some("a b".into()),
            client: Some(OAuthClientRegistration {
                issuer: "http://as".into(),
                client_id: "c".into(),
                client_secret: Some("s".into()),
                token_endpoint_auth_method: "client_secret_basic".into(),
                redirect_uri: Some("http://127.0.0.1:1/callback".into()),
                dynamic: true,
            }),
            tokens: Some(OAuthTokens {
                access_token: token.into(),
                token_type: "Bearer".into(),
                refresh_token: Some("r".into()),
                expires_at: Some(unix_now() + 3600),
                issued_at: Some(unix_now()),
                scope: Some("a b".into()),
            }),
        }
    }

    #[test]
    fn keeps_entries_per_server_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/shadowcat/tokens.json");
        let store = OAuthTokenStore::new(&path);
        assert_eq!(store.load("http://a/mcp").unwrap(), None);
        store.save("http://a/mcp", &entry("ta")).unwrap();
        store.save("http://b/mcp", &entry("tb")).unwrap();
        let again = OAuthTokenStore::new(&path);
        assert_eq!(again.load("http://a/mcp").unwrap(), Some(entry("ta")));
        assert_eq!(again.load("http://b/mcp").unwrap(), Some(entry("tb")));
        again.remove("http://a/mcp").unwrap();
        assert_eq!(store.load("http://a/mcp").unwrap(), None);
        assert!(store.load("http://b/mcp").unwrap().is_some());
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["tokens.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_and_its_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/tokens.json");
        let store = OAuthTokenStore::new(&path);
        store.save("http://a/mcp", &entry("t")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // A file others can read is narrowed when read.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        store.load("http://a/mcp").unwrap();
        assert_eq!(mode(&path), 0o600);
        // A save replaces the file with a private one, whatever the old one's mode.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        store.save("http://a/mcp", &entry("t2")).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        fs::write(&path, "{not json").unwrap();
        let err = OAuthTokenStore::new(&path).load("x").unwrap_err();
        assert!(err.to_string().contains("token store"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let text = format!("{:?}", entry("secret-access"));
        assert!(!text.contains("secret-access"), "{text}");
        assert!(!text.contains("\"s\""), "{text}");
    }

    #[test]
    fn expiry_is_judged_with_a_margin() {
        let mut tokens = OAuthTokens::bearer("t");
        assert!(!tokens.expires_within(Duration::from_secs(60)));
        tokens.expires_at = Some(unix_now() + 30);
        assert!(tokens.expires_within(Duration::from_secs(60)));
        assert!(!tokens.expires_within(Duration::from_secs(10)));
        assert!(tokens.refresh_due(Duration::from_secs(60)));
        // A 40 s token issued just now is not due before half its life.
        tokens.issued_at = Some(unix_now());
        tokens.expires_at = Some(unix_now() + 40);
        assert!(!tokens.refresh_due(Duration::from_secs(60)));
        tokens.issued_at = Some(unix_now() - 30);
        tokens.expires_at = Some(unix_now() + 10);
        assert!(tokens.refresh_due(Duration::from_secs(60)));
    }
}
