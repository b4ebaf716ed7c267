//! A deliberately small blocking HTTP/1.1 client for tests that need exact control of what
//! goes on the wire (headers, bodies, half-read streams, disconnects) and to see exactly
//! what comes back (status, headers, chunked SSE streams event by event).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A whole response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The SSE events of a `text/event-stream` body.
    pub fn events(&self) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        parser.push(&self.body);
        std::iter::from_fn(|| parser.next_event()).collect()
    }

    /// Every JSON-RPC message of the answer: the JSON body, or the data of each SSE event.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        if self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            self.events()
                .into_iter()
                .filter(|e| !e.data.is_empty())
                .map(|e| serde_json::from_str(&e.data).expect("SSE data is JSON"))
                .collect()
        } else {
            vec![self.json()]
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field.
    pub event: Option<String>,
    /// The `id` field.
    pub id: Option<String>,
    /// The `retry` field.
    pub retry: Option<u64>,
    /// The data lines, joined with `\n`.
    pub data: String,
}

/// Splits SSE text into events (comments are skipped).
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let mut event = SseEvent::default();
            let mut data = Vec::new();
            let mut any = false;
            for line in text.lines() {
                if line.starts_with(':') || line.is_empty() {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                any = true;
                match field {
                    "event" => event.event = Some(value),
                    "id" => event.id = Some(value),
                    "retry" => event.retry = value.parse().ok(),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if any {
                event.data = data.join("\n");
                return Some(event);
            }
        }
    }
}

fn write_request(
    stream: &mut TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("write request head");
    // A server may answer (413, say) and close before reading a large body: its answer is
    // still there to read.
    if let Err(e) = stream.write_all(body) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "write request body: {e}"
        );
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// Sends one request on a new connection and reads the whole answer (until the server
/// closes the connection or the body ends); panics after `timeout` of silence.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> RawResponse {
    let mut stream = HttpStream::open(addr, method, path, headers, body, timeout);
    let mut body = Vec::new();
    while let Some(chunk) = stream.read_chunk() {
        body.extend_from_slice(&chunk);
    }
    RawResponse {
        status: stream.status,
        headers: stream.headers,
        body,
    }
}

/// A response read as it arrives (for SSE streams).
#[derive(Debug)]
pub struct HttpStream {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    remaining: Option<u64>,
    done: bool,
    sse: SseParser,
}

impl HttpStream {
    /// Sends a request and reads the status line and headers.
    pub fn open(
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        write_request(&mut stream, addr, method, path, headers, body);
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let chunked = header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked"));
        let remaining = header(&headers, "content-length").and_then(|l| l.parse().ok());
        Self {
            status,
            headers,
            reader,
            chunked,
            remaining,
            done: false,
            sse: SseParser::default(),
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The next piece of the body; `None` at its end.
    pub fn read_chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        if self.chunked {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read chunk size");
            let size = usize::from_str_radix(line.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            let mut chunk = vec![0; size];
            self.reader.read_exact(&mut chunk).expect("read chunk");
            let mut crlf = [0; 2];
            self.reader.read_exact(&mut crlf).expect("read chunk end");
            if size == 0 {
                self.done = true;
                return None;
            }
            return Some(chunk);
        }
        let mut chunk = vec![0; 16 * 1024];
        let want = self
            .remaining
            .map_or(chunk.len(), |r| r.min(chunk.len() as u64) as usize);
        if want == 0 {
            self.done = true;
            return None;
        }
        let n = self.reader.read(&mut chunk[..want]).expect("read body");
        if n == 0 {
            self.done = true;
            return None;
        }
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        chunk.truncate(n);
        Some(chunk)
    }

    /// The next SSE event; `None` when the stream ended.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.sse.next_event() {
                return Some(event);
            }
            let chunk = self.read_chunk()?;
            self.sse.push(&chunk);
        }
    }

    /// Closes the connection without reading the rest (a client that goes away).
    pub fn disconnect(self) {
        let _ = self.reader.get_ref().shutdown(std::net::Shutdown::Both);
    }
}
