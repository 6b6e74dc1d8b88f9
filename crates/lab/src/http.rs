//! A deliberately small HTTP/1.1 message reader/writer for the lab's apps and sidecars.
//!
//! Hand-written so the lab controls byte timing (when the request line is written, when a
//! connection is closed). It understands `Content-Length` bodies and `Connection: close`, which is
//! all the lab's apps send. It must not be used on untrusted networks: sizes are capped and
//! anything else is a protocol error.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Largest head the lab accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body the lab accepts.
const MAX_BODY: usize = 1024 * 1024;

/// One parsed request or response.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// First line without CRLF (`GET /x HTTP/1.1` or `HTTP/1.1 200 OK`).
    pub first_line: String,
    /// Header lines as (name, value).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Message {
    /// Header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Status code of a response (0 if not a response).
    pub fn status(&self) -> u16 {
        self.first_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// (method, path) of a request.
    pub fn method_path(&self) -> (String, String) {
        let mut it = self.first_line.split(' ');
        let m = it.next().unwrap_or("-").to_string();
        let p = it.next().unwrap_or("-").to_string();
        (m, p)
    }

    /// Whether the sender asked to close after this message.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Serialize (head + body) with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.first_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("content-length") {
                continue;
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Why reading a message failed.
#[derive(Debug)]
pub enum ReadError {
    /// Clean EOF before the first byte of a message.
    Closed,
    /// EOF in the middle of a message.
    Truncated,
    /// The OS reported an error (reset, timeout...).
    Io(io::Error),
    /// Bytes that are not an HTTP/1.1 message the lab understands.
    Protocol(&'static str),
}

/// Buffered reader over a stream, with bytes already read (a sniffed prefix) replayed first.
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// A reader that will first replay `prefix`.
    pub fn with_prefix(prefix: Vec<u8>) -> Self {
        Self { buf: prefix }
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Read one message from `s`.
    pub async fn read_message<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
    ) -> Result<Message, ReadError> {
        // Bounded by MAX_HEAD: each iteration adds at least one byte or returns.
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Protocol("head too large"));
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.map_err(ReadError::Io)?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Truncated
                });
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        };
        let head = String::from_utf8_lossy(self.buf.get(..head_end).unwrap_or(&[])).into_owned();
        let mut lines = head.split("\r\n");
        let first_line = lines.next().unwrap_or("").to_string();
        if first_line.is_empty() || !first_line.contains(' ') {
            return Err(ReadError::Protocol("bad first line"));
        }
        let mut headers = Vec::new();
        for l in lines {
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut msg = Message {
            first_line,
            headers,
            body: Vec::new(),
        };
        let len: usize = match msg.header("content-length") {
            Some(v) => v
                .parse()
                .map_err(|_| ReadError::Protocol("bad content-length"))?,
            None => 0,
        };
        if len > MAX_BODY {
            return Err(ReadError::Protocol("body too large"));
        }
        self.buf.drain(..head_end + 4);
        // Bounded by MAX_BODY.
        while self.buf.len() < len {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Truncated);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
        msg.body = self.buf.drain(..len).collect();
        Ok(msg)
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `line` (without the trailing newline) looks like an HTTP/1.x request line, the way
/// Envoy's http_inspector decides (method token, target, `HTTP/1.0|1.1`).
pub fn is_request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(s) = std::str::from_utf8(line) else {
        return false;
    };
    let mut it = s.split(' ');
    let (Some(m), Some(t), Some(v), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return false;
    };
    !m.is_empty()
        && m.bytes().all(|b| b.is_ascii_uppercase())
        && !t.is_empty()
        && (v == "HTTP/1.1" || v == "HTTP/1.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_detection() {
        assert!(is_request_line(b"GET /api HTTP/1.1\r"));
        assert!(!is_request_line(b"\x16\x03\x01"));
        assert!(!is_request_line(b"GET /api"));
        assert!(!is_request_line(b""));
    }

    #[tokio::test]
    async fn reads_prefix_then_stream() {
        let mut r =
            Reader::with_prefix(b"GET / HTTP/1.1\r\nhost: b\r\ncontent-length: 2\r\n".to_vec());
        let mut rest: &[u8] = b"\r\nhi";
        let m = r.read_message(&mut rest).await.unwrap();
        assert_eq!(m.first_line, "GET / HTTP/1.1");
        assert_eq!(m.body, b"hi");
        assert!(matches!(
            r.read_message(&mut rest).await,
            Err(ReadError::Closed)
        ));
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b"\r\n\r\n"[..],
            b"X\r\n\r\n",
            b"GET / HTTP/1.1\r\ncontent-length: zz\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            let mut s = input;
            let mut r = Reader::with_prefix(Vec::new());
            assert!(r.read_message(&mut s).await.is_err());
        }
    }
}
