//! The gateway's admission step in the HTTP load benchmark: an authorization server's keys
//! on a loopback port, a gateway configuration that authenticates every request (a JWT),
//! checks rate limits and a policy, and audits, and the bearer token the load sends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::json;
use shadowcat_test_support::{SigningKey, jwks};

use crate::{Error, Result};

/// The issuer tokens name.
const ISSUER: &str = "https://idp.bench.invalid";
/// The gateway's resource URI (the tokens' audience).
const RESOURCE: &str = "https://gateway.bench.invalid/mcp";

/// Keys served over loopback HTTP, a configuration file for `shadowcat reverse --config`,
/// and a token it accepts; the key server stops when this is dropped.
#[derive(Debug)]
pub struct AdmissionFixture {
    /// `--config FILE` of the gateway.
    pub config: PathBuf,
    /// The `Authorization` header value the load sends.
    pub authorization: String,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    server: Option<thread::JoinHandle<()>>,
}

impl AdmissionFixture {
    /// Generates a key, serves its JWKS, writes the configuration into a fresh directory.
    pub fn start() -> Result<Self> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| Error::Io { context, source }
        };
        let key = SigningKey::rsa("bench-key");
        let body = jwks(&[&key]).to_string();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io("binding the key server"))?;
        let addr = listener
            .local_addr()
            .map_err(io("the key server's address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = stop.clone();
            thread::spawn(move || serve_keys(&listener, &body, &stop))
        };
        let dir =
            std::env::temp_dir().join(format!("shadowcat-bench-admission-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io("creating the fixture directory"))?;
        let config = dir.join("gateway.yaml");
        let yaml = format!(
            "auth:\n  resource: {RESOURCE}\n  issuer: {ISSUER}\n  jwks_url: http://{addr}/jwks.json\n\
             policy:\n  default: deny\n  rules:\n    - {{name: no-admin, effect: deny, match: {{tool: \"admin_*\"}}}}\n    - {{name: tool-users, effect: allow, scopes: [mcp:tools]}}\n\
             rate_limits:\n  - {{scope: global, rate: 10000000/s, burst: 10000000}}\n  - {{scope: client_ip, rate: 1000000/s, burst: 1000000}}\n  - {{scope: subject, rate: 1000000/s, burst: 1000000}}\n\
             audit:\n  path: {audit}\n",
            audit = dir.join("audit.jsonl").display(),
        );
        std::fs::write(&config, yaml).map_err(io("writing the gateway configuration"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let token = key.sign(&json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "bench", "scope": "mcp:tools",
            "iat": now, "exp": now + 24 * 3600,
        }));
        Ok(Self {
            config,
            authorization: format!("Bearer {token}"),
            dir,
            stop,
            addr,
            server: Some(server),
        })
    }
}

impl Drop for AdmissionFixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Answers every connection with the JWKS, one request per connection.
fn serve_keys(listener: &TcpListener, body: &str, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
