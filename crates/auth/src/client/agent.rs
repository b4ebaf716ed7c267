//! The user agent step: how the authorization URL reaches whoever approves it.

use std::time::Duration;

use http::Uri;

use super::http::{OAuthHttp, http_url};
use super::metadata::origin;
use crate::{Error, Result};

/// How many redirects `Fetch` follows.
const MAX_REDIRECTS: usize = 10;

/// How the authorization URL is opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthorizeMode {
    /// Print the URL on stderr for the user to open in a browser (stdout carries MCP).
    #[default]
    Print,
    /// Print it and run this command (program and arguments) with the URL as its last
    /// argument, such as `xdg-open` or `open`.
    Browser(Vec<String>),
    /// GET the URL from the proxy itself and follow its redirects to the loopback
    /// receiver: for authorization servers that approve without user interaction (test
    /// servers, some enterprise setups). A page that asks for a login ends the attempt.
    Fetch,
}

/// Presents `url` according to `mode`; `redirect_uri` is where the approval lands.
pub(super) async fn present(
    mode: &AuthorizeMode,
    http: &OAuthHttp,
    url: &str,
    redirect_uri: &str,
    server: &str,
) -> Result<()> {
    match mode {
        AuthorizeMode::Print => {
            announce(url, server);
            Ok(())
        }
        AuthorizeMode::Browser(command) => {
            announce(url, server);
            open_browser(command, url).await;
            Ok(())
        }
        AuthorizeMode::Fetch => fetch(http, url, redirect_uri).await,
    }
}

fn announce(url: &str, server: &str) {
    // Straight to stderr, whatever the log level: someone has to act on it.
    eprintln!(
        "shadowcat: {server} needs authorization. Open this URL in a browser:\n\n    {url}\n"
    );
    tracing::info!(%server, "waiting for the authorization in the browser");
}

async fn open_browser(command: &[String], url: &str) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(%program, "cannot open a browser: {e}");
            return;
        }
    };
    // Openers such as `xdg-open` return at once; a browser run directly keeps running
    // and is left to run (the runtime reaps it when it exits).
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(Ok(status)) if !status.success() => {
            tracing::warn!(%program, "the browser command failed: {status}");
        }
        Ok(Err(e)) => tracing::warn!(%program, "the browser command failed: {e}"),
        _ => {}
    }
}

/// GETs `url` and follows redirects until the receiver at `redirect_uri` has answered.
async fn fetch(http: &OAuthHttp, url: &str, redirect_uri: &str) -> Result<()> {
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let answer = http.get(&current).await?;
        let reached_receiver = current.starts_with(redirect_uri);
        match answer.location.as_deref() {
            Some(location) if answer.status.is_redirection() && !reached_receiver => {
                current = resolve(&current, location)?;
            }
            _ if reached_receiver && answer.status.is_success() => return Ok(()),
            _ if reached_receiver => {
                let body = String::from_utf8_lossy(&answer.body);
                let said = body
                    .split("<p>")
                    .nth(1)
                    .and_then(|rest| rest.split("</p>").next())
                    .unwrap_or_default();
                return Err(Error::Authorization(format!(
                    "the loopback receiver refused the redirect (HTTP {}): {said}",
                    answer.status
                )));
            }
            _ => {
                return Err(Error::Authorization(format!(
                    "fetching the authorization URL ended at {current} with {} and no redirect to the receiver; this authorization server needs a browser (use the print or browser mode)",
                    answer.explain()
                )));
            }
        }
    }
    Err(Error::Authorization(format!(
        "fetching the authorization URL: more than {MAX_REDIRECTS} redirects"
    )))
}

/// A `Location` resolved against the URL that answered with it.
fn resolve(base: &str, location: &str) -> Result<String> {
    let location = location.trim();
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    if has_scheme {
        http_url(location)?;
        return Ok(location.to_owned());
    }
    let base_uri: Uri = http_url(base)?;
    let origin = origin(&base_uri).unwrap_or_default();
    let resolved = if let Some(rest) = location.strip_prefix("//") {
        format!("{}://{rest}", base_uri.scheme_str().unwrap_or("https"))
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let path = base_uri.path();
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{origin}{dir}{location}")
    };
    http_url(&resolved)?;
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_answering_url() {
        let base = "http://localhost:9/oauth/authorize?x=1";
        assert_eq!(
            resolve(base, "http://127.0.0.1:5/callback?code=c").unwrap(),
            "http://127.0.0.1:5/callback?code=c"
        );
        assert_eq!(
            resolve(base, "/login?next=1").unwrap(),
            "http://localhost:9/login?next=1"
        );
        assert_eq!(
            resolve(base, "consent").unwrap(),
            "http://localhost:9/oauth/consent"
        );
        assert_eq!(resolve(base, "//other:1/p").unwrap(), "http://other:1/p");
        assert!(resolve(base, "javascript:alert(1)").is_err());
        assert!(resolve(base, "ftp://files.example/x").is_err());
    }
}
