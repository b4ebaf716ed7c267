//! The record framing shared by the binary and lz4 formats: a file header (magic, version,
//! header JSON, CRC), then records `u32 len | u8 kind | payload | u32 crc | u32 len`.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use crate::codec::decode_header;
use crate::crc32::{Crc32, crc32};
use crate::{Error, Position, Result, TapeHeader};

/// Bytes a record adds around its payload: two lengths, the kind and the CRC.
pub(crate) const RECORD_OVERHEAD: u64 = 13;

/// The longest payload (and header JSON) a reader accepts: 256 MiB.
pub(crate) const MAX_PAYLOAD: u32 = 256 << 20;

/// Appends a record to `out`.
pub(crate) fn push_record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.push(kind);
    out.extend_from_slice(payload);
    let mut crc = Crc32::new();
    crc.update(&[kind]);
    crc.update(payload);
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out.extend_from_slice(&len);
}

/// A file header: magic, version, header JSON with its length and CRC.
pub(crate) fn push_file_header(out: &mut Vec<u8>, magic: &[u8; 8], version: u32, json: &[u8]) {
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(&crc32(json).to_le_bytes());
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What reading the next record found.
pub(crate) enum Next {
    /// A record whose CRC matched: its kind (payload in [`RecordReader::payload`]), and
    /// where it starts.
    Record { kind: u8, at: Position },
    /// The clean end of the input.
    End,
}

/// Reads records one by one, holding one payload at a time.
#[derive(Debug)]
pub(crate) struct RecordReader<R> {
    inner: R,
    pub(crate) source: Arc<str>,
    /// The next record's number (the file header is record 1).
    record: u64,
    /// The byte offset of the next record.
    byte: u64,
    payload: Vec<u8>,
    /// Set after a torn tail or an unrecoverable error: nothing more is read.
    pub(crate) done: bool,
}

impl<R: Read> RecordReader<R> {
    /// Reads the file header; `what` names the format in errors.
    pub(crate) fn open(
        mut inner: R,
        source: Arc<str>,
        magic: &[u8; 8],
        supported: u32,
        what: &str,
    ) -> Result<(Self, TapeHeader, u32)> {
        let at = Position::new(source.clone(), 1, 0);
        let io = |source_err: std::io::Error| Error::Io {
            context: format!("reading {source}"),
            source: source_err,
        };
        let mut fixed = [0u8; 16];
        let got = read_full(&mut inner, &mut fixed).map_err(io)?;
        if got < 8 || &fixed[..8] != magic {
            if got < 8 && fixed[..got] == magic[..got] && got > 0 {
                return Err(Error::TornTail {
                    at,
                    len: got as u64,
                });
            }
            return Err(Error::Malformed {
                at,
                reason: format!("not a Shadowcat {what} tape: wrong magic bytes"),
            });
        }
        if got < 16 {
            return Err(Error::TornTail {
                at,
                len: got as u64,
            });
        }
        let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        if version == 0 {
            let reason = "header: version 0 does not exist".to_owned();
            return Err(Error::Malformed { at, reason });
        }
        if version > supported {
            return Err(Error::NewerVersion {
                at,
                found: u64::from(version),
                supported,
            });
        }
        let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
        if len > MAX_PAYLOAD {
            let reason = format!("header: length {len} is too large");
            return Err(Error::Malformed { at, reason });
        }
        let mut json = Vec::new();
        (&mut inner)
            .take(u64::from(len) + 4)
            .read_to_end(&mut json)
            .map_err(io)?;
        if json.len() < len as usize + 4 {
            let present = 16 + json.len() as u64;
            return Err(Error::TornTail { at, len: present });
        }
        let crc_bytes = json.split_off(len as usize);
        let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if stored != crc32(&json) {
            let reason = "header: CRC mismatch".to_owned();
            return Err(Error::Malformed { at, reason });
        }
        let header = decode_header(&json).map_err(|reason| Error::Malformed {
            at: at.clone(),
            reason,
        })?;
        let reader = Self {
            inner,
            source,
            record: 2,
            byte: 20 + u64::from(len),
            payload: Vec::new(),
            done: false,
        };
        Ok((reader, header, version))
    }

    /// Where the next record starts.
    pub(crate) fn position(&self) -> Position {
        Position::new(self.source.clone(), self.record, self.byte)
    }

    /// The payload of the record last returned.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Reads raw bytes that follow the records (the lz4 trailer).
    pub(crate) fn read_rest(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = read_full(&mut self.inner, buf).map_err(|e| self.io(e))?;
        self.byte += n as u64;
        Ok(n)
    }

    fn io(&mut self, source: std::io::Error) -> Error {
        self.done = true;
        Error::Io {
            context: format!("reading {}", self.source),
            source,
        }
    }

    /// Reads the next record. A CRC mismatch is reported and the record skipped (the
    /// reader goes on); a torn tail or broken framing ends the reading.
    pub(crate) fn next(&mut self) -> Result<Next> {
        if self.done {
            return Ok(Next::End);
        }
        let at = self.position();
        let mut head = [0u8; 5];
        let got = read_full(&mut self.inner, &mut head).map_err(|e| self.io(e))?;
        if got == 0 {
            self.done = true;
            return Ok(Next::End);
        }
        if got < 5 {
            return Err(self.torn(at, got as u64));
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let kind = head[4];
        if len > MAX_PAYLOAD {
            // Possibly a cut write of a huge length; more likely garbage. Either way the
            // framing is lost: measure what is left to tell the two apart.
            let rest = std::io::copy(
                &mut (&mut self.inner).take(u64::from(len) + 8),
                &mut std::io::sink(),
            )
            .map_err(|e| self.io(e))?;
            self.done = true;
            if rest < u64::from(len) + 8 {
                return Err(Error::TornTail { at, len: 5 + rest });
            }
            let reason = format!("record length {len} is larger than {MAX_PAYLOAD}");
            return Err(Error::Malformed { at, reason });
        }
        self.payload.clear();
        let want = u64::from(len) + 8;
        (&mut self.inner)
            .take(want)
            .read_to_end(&mut self.payload)
            .map_err(|e| self.io(e))?;
        if (self.payload.len() as u64) < want {
            let present = 5 + self.payload.len() as u64;
            return Err(self.torn(at, present));
        }
        let tail = self.payload.split_off(len as usize);
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let len_again = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
        self.record += 1;
        self.byte += u64::from(len) + RECORD_OVERHEAD;
        if len_again != len {
            self.done = true;
            let reason =
                format!("record framing broken: length {len} at the start, {len_again} at the end");
            return Err(Error::Malformed { at, reason });
        }
        let mut crc = Crc32::new();
        crc.update(&[kind]);
        crc.update(&self.payload);
        if crc.finish() != stored {
            let reason = format!("record CRC mismatch (kind {kind}, {len} bytes); record skipped");
            return Err(Error::Malformed { at, reason });
        }
        Ok(Next::Record { kind, at })
    }

    fn torn(&mut self, at: Position, len: u64) -> Error {
        self.done = true;
        self.byte += len;
        Error::TornTail { at, len }
    }
}
