//! A raw HTTP/1.1 client over a plain TCP socket: it sends whatever bytes it is given (HTTP
//! clients refuse to send most of the garbage the corpus needs) and reads back exactly one reply,
//! framed by its Content-Length, with a bounded wait so a hang is reported instead of blocking.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How a request's bytes are put on the wire.
#[derive(Clone, Debug)]
pub enum Framing {
    /// `Content-Length` set to the body's length.
    Auto,
    /// The case's headers carry their own (possibly lying) framing; after the bytes are sent the
    /// client half-closes, so a body shorter than declared ends at once instead of timing out.
    AsGiven,
    /// These bytes exactly, nothing built: for requests that are not HTTP at all.
    Verbatim(Vec<u8>),
}

/// One request, byte for byte.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl RawRequest {
    pub fn new(method: &str, target: &str) -> Self {
        RawRequest {
            method: method.as_bytes().to_vec(),
            target: target.as_bytes().to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
            framing: Framing::Auto,
        }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_bytes().to_vec(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces every header `name` with one value (or adds it).
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        self.headers
            .push((name.as_bytes().to_vec(), value.as_ref().to_vec()));
    }

    /// The bytes that go on the wire. Every built request asks the server to close the
    /// connection after the reply, so one reply is read per connection.
    pub fn to_bytes(&self) -> Vec<u8> {
        if let Framing::Verbatim(bytes) = &self.framing {
            return bytes.clone();
        }
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if !self.has("connection") {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        if matches!(self.framing, Framing::Auto) {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// One reply as read off the socket.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// What came back for one request.
#[derive(Debug)]
pub enum Exchange {
    Reply(RawResponse),
    /// The server closed the connection without a byte of reply.
    Closed,
    /// No complete reply within the deadline.
    Hang(String),
    /// Something came back that is not an HTTP reply.
    Garbled(String),
}

/// How long one exchange may take before it counts as a hang.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(20);

/// Sends `request` on a fresh connection to 127.0.0.1:`port` and reads one reply. The write runs
/// on its own thread so an early refusal (sent before the body is complete) is read at once.
pub fn exchange(port: u16, request: &RawRequest) -> Exchange {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return Exchange::Garbled(format!("connect: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let Ok(mut writer) = stream.try_clone() else {
        return Exchange::Garbled("clone".into());
    };
    let bytes = request.to_bytes();
    let half_close = !matches!(request.framing, Framing::Auto);
    let write = std::thread::spawn(move || {
        // The server may refuse and close before everything is written: not an error here.
        let _ = writer.write_all(&bytes);
        if half_close {
            let _ = writer.shutdown(Shutdown::Write);
        }
    });
    let deadline = Instant::now() + REPLY_DEADLINE;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let outcome = loop {
        if let Some(done) = parse(&buf) {
            break done;
        }
        if Instant::now() > deadline {
            break Err(Exchange::Hang(format!(
                "no complete reply within {REPLY_DEADLINE:?} ({} bytes read)",
                buf.len()
            )));
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                break Err(if buf.is_empty() {
                    Exchange::Closed
                } else {
                    // Read-to-close framing (no Content-Length) ends here.
                    match parse_head(&buf) {
                        Some((mut resp, start)) => {
                            resp.body = buf[start..].to_vec();
                            Exchange::Reply(resp)
                        }
                        None => Exchange::Garbled(String::from_utf8_lossy(&buf).into_owned()),
                    }
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) if buf.is_empty() => break Err(Exchange::Closed),
            Err(e) => break Err(Exchange::Garbled(format!("read: {e}"))),
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    let _ = write.join();
    match outcome {
        Ok(resp) => Exchange::Reply(resp),
        Err(other) => other,
    }
}

/// The final reply's status line and headers (interim 1xx replies such as 100 Continue are
/// skipped), and where its body starts; None until that head is complete.
fn parse_head(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let (mut resp, mut start) = parse_one_head(buf)?;
    while (100..200).contains(&resp.status) {
        let (next, next_start) = parse_one_head(&buf[start..])?;
        start += next_start;
        resp = next;
    }
    Some((resp, start))
}

fn parse_one_head(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().as_bytes().to_vec()))
        .collect();
    Some((
        RawResponse {
            status,
            headers,
            body: Vec::new(),
        },
        end + 4,
    ))
}

/// A complete reply framed by Content-Length, if the buffer holds one.
fn parse(buf: &[u8]) -> Option<Result<RawResponse, Exchange>> {
    let (mut resp, start) = parse_head(buf)?;
    let length: usize = String::from_utf8_lossy(resp.header("content-length")?)
        .trim()
        .parse()
        .ok()?;
    if buf.len() < start + length {
        return None;
    }
    resp.body = buf[start..start + length].to_vec();
    Some(Ok(resp))
}
