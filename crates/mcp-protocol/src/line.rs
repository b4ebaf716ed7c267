//! Newline-delimited JSON framing (the stdio transport), as a push/next decoder.

use bytes::{Bytes, BytesMut};

use crate::{Error, Result};

/// The default limit on one line: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// One line of input, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes, without `\n` or `\r\n`.
    pub bytes: Bytes,
    /// The 1-based line number within the stream.
    pub number: u64,
    /// The byte offset of the line's first byte within the stream.
    pub offset: u64,
}

/// Splits a byte stream into lines: bytes go in with [`push`](Self::push) (or straight into
/// [`buffer`](Self::buffer)), lines come out of [`next_line`](Self::next_line).
///
/// Blank lines are skipped. A line longer than the limit yields one [`Error::TooLarge`] as
/// soon as the limit is passed, and its remaining bytes are discarded up to the next newline
/// without being buffered, so one huge line costs no memory.
///
/// ```
/// use shadowcat_mcp::LineDecoder;
///
/// let mut dec = LineDecoder::new(1024);
/// dec.push(b"{\"a\":1}\r\n\n{\"b\"");
/// assert_eq!(&dec.next_line().unwrap().unwrap().bytes[..], b"{\"a\":1}");
/// assert!(dec.next_line().is_none());
/// dec.push(b":2}\n");
/// let line = dec.next_line().unwrap().unwrap();
/// assert_eq!((&line.bytes[..], line.number), (&b"{\"b\":2}"[..], 3));
/// ```
#[derive(Debug)]
pub struct LineDecoder {
    buf: BytesMut,
    max: usize,
    /// How far `buf` has been searched for a newline.
    scanned: usize,
    /// Line number of the line at the start of `buf` (1-based).
    line: u64,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// Discarding the rest of an oversized line.
    discarding: bool,
}

impl LineDecoder {
    /// A decoder that accepts lines of at most `max_line` bytes (without the line ending).
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(8 * 1024),
            max: max_line,
            scanned: 0,
            line: 1,
            offset: 0,
            discarding: false,
        }
    }

    /// The configured limit.
    pub fn max_line(&self) -> usize {
        self.max
    }

    /// Appends input.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, with room reserved for at least `reserve` more bytes, for reading
    /// straight into it without a copy (`AsyncReadExt::read_buf`).
    pub fn buffer(&mut self, reserve: usize) -> &mut BytesMut {
        self.buf.reserve(reserve);
        &mut self.buf
    }

    /// Whether a complete line may be waiting (input not yet searched, or a newline found).
    pub fn has_buffered(&self) -> bool {
        self.scanned < self.buf.len()
    }

    /// The next complete line, an error for an oversized one, or `None` when more input is
    /// needed.
    pub fn next_line(&mut self) -> Option<Result<Line>> {
        loop {
            let found = memchr::memchr(b'\n', &self.buf[self.scanned..]).map(|i| self.scanned + i);
            let Some(end) = found else {
                self.scanned = self.buf.len();
                if self.discarding {
                    self.offset += self.buf.len() as u64;
                    self.buf.clear();
                    self.scanned = 0;
                } else if self.buf.len() - usize::from(self.buf.last() == Some(&b'\r')) > self.max {
                    // A trailing CR may be the first half of the line's CRLF.
                    return Some(Err(self.start_discarding()));
                }
                return None;
            };
            let number = self.line;
            let offset = self.offset;
            let mut bytes = self.buf.split_to(end + 1);
            self.line += 1;
            self.offset += bytes.len() as u64;
            self.scanned = 0;
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            bytes.truncate(end);
            if bytes.last() == Some(&b'\r') {
                bytes.truncate(end - 1);
            }
            if bytes.len() > self.max {
                return Some(Err(Error::TooLarge {
                    size: bytes.len(),
                    limit: self.max,
                    location: format!("line {number} (byte offset {offset})"),
                }));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(Line {
                bytes: bytes.freeze(),
                number,
                offset,
            }));
        }
    }

    fn start_discarding(&mut self) -> Error {
        let err = Error::TooLarge {
            size: self.buf.len(),
            limit: self.max,
            location: format!("line {} (byte offset {})", self.line, self.offset),
        };
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        self.scanned = 0;
        self.discarding = true;
        err
    }

    /// At end of input: the last line when it had no newline, unless it was being discarded.
    pub fn finish(&mut self) -> Option<Result<Line>> {
        if self.buf.iter().all(u8::is_ascii_whitespace) || self.discarding {
            self.buf.clear();
            self.discarding = false;
            return None;
        }
        self.buf.extend_from_slice(b"\n");
        self.scanned = 0;
        self.next_line()
    }
}

/// Appends `message` and a newline to `out`, as one line: any CR or LF in the message (which
/// in valid JSON can only be insignificant whitespace) becomes a space.
pub fn encode_line(message: &[u8], out: &mut BytesMut) {
    let start = out.len();
    out.extend_from_slice(message);
    if memchr::memchr2(b'\n', b'\r', message).is_some() {
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    out.extend_from_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(dec: &mut LineDecoder) -> Vec<Result<Vec<u8>>> {
        std::iter::from_fn(|| dec.next_line())
            .map(|r| r.map(|l| l.bytes.to_vec()))
            .collect()
    }

    #[test]
    fn splits_at_every_boundary() {
        let input = b"{\"a\":1}\n\r\n  \n{\"b\":2}\r\n{\"c\":3}\n";
        for cut in 0..=input.len() {
            let mut dec = LineDecoder::new(64);
            dec.push(&input[..cut]);
            let mut got = lines(&mut dec);
            dec.push(&input[cut..]);
            got.extend(lines(&mut dec));
            let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
            assert_eq!(
                got,
                vec![
                    b"{\"a\":1}".to_vec(),
                    b"{\"b\":2}".to_vec(),
                    b"{\"c\":3}".to_vec()
                ]
            );
        }
    }

    #[test]
    fn oversized_line_is_reported_once_and_skipped() {
        let mut dec = LineDecoder::new(8);
        dec.push(b"{\"ok\":1}\n0123456789");
        assert!(dec.next_line().unwrap().is_ok());
        match dec.next_line() {
            Some(Err(Error::TooLarge {
                limit: 8, location, ..
            })) => {
                assert_eq!(location, "line 2 (byte offset 9)");
            }
            other => panic!("{other:?}"),
        }
        dec.push(b"more bytes of the same line");
        assert!(dec.next_line().is_none());
        dec.push(b"...\n{\"n\":2}\n");
        let line = dec.next_line().unwrap().unwrap();
        assert_eq!((&line.bytes[..], line.number), (&b"{\"n\":2}"[..], 3));
        assert!(dec.next_line().is_none());
    }

    #[test]
    fn oversized_line_in_one_chunk() {
        let mut dec = LineDecoder::new(4);
        dec.push(b"123456\nabc\n");
        assert!(matches!(
            dec.next_line(),
            Some(Err(Error::TooLarge { size: 6, .. }))
        ));
        assert_eq!(&dec.next_line().unwrap().unwrap().bytes[..], b"abc");
    }

    #[test]
    fn finish_returns_an_unterminated_last_line() {
        let mut dec = LineDecoder::new(64);
        dec.push(b"{\"a\":1}\n{\"b\":2}");
        assert!(dec.next_line().unwrap().is_ok());
        assert!(dec.next_line().is_none());
        assert_eq!(&dec.finish().unwrap().unwrap().bytes[..], b"{\"b\":2}");
        assert!(dec.finish().is_none());
    }

    #[test]
    fn encode_keeps_one_message_on_one_line() {
        let mut out = BytesMut::new();
        encode_line(b"{\"a\":\r\n 1}", &mut out);
        assert_eq!(&out[..], b"{\"a\":   1}\n");
    }
}
