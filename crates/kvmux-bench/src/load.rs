//! The load loop: N keep-alive HTTP/1.1 connections, each sending its next request as soon as the
//! previous reply is read (closed loop), recording every latency in an HDR histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What one measured run produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The first error reply seen, to tell a misconfiguration from load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens one keep-alive connection.
async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One client connection that reopens itself when the server closes it after a reply (HTTP/1.0
/// servers such as moto's, or `Connection: close`): such a server then pays for a new connection
/// per request, as its real clients would.
pub struct Conn {
    addr: String,
    sender: Option<Sender>,
    /// How many times the connection had to be reopened.
    pub reconnects: u64,
}

impl Conn {
    pub async fn open(addr: &str) -> Result<Conn, String> {
        Ok(Conn {
            addr: addr.to_string(),
            sender: Some(connect(addr).await?),
            reconnects: 0,
        })
    }

    /// Sends one request and reads the whole reply.
    pub async fn send(&mut self, req: Request<Bytes>) -> Result<(http::StatusCode, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => {
                self.reconnects += 1;
                connect(&self.addr).await?
            }
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let resp = sender
            .send_request(req.map(Full::new))
            .await
            .map_err(|e| format!("request: {e}"))?;
        let closing = resp.version() == http::Version::HTTP_10
            || resp
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if !closing {
            self.sender = Some(sender);
        }
        Ok((status, body))
    }
}

/// Runs `connections` closed loops for `duration`. `make(i)` builds the i-th request overall;
/// `is_error` judges a reply.
pub async fn run<M, E>(
    addr: &str,
    connections: usize,
    duration: Duration,
    make: M,
    is_error: E,
) -> Result<Outcome, String>
where
    M: Fn(u64) -> Request<Bytes> + Send + Sync + 'static,
    E: Fn(http::StatusCode, &[u8]) -> bool + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let is_error = Arc::new(is_error);
    let counter = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(Conn::open(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for mut sender in senders {
        let (make, is_error, counter) = (make.clone(), is_error.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            // 1 µs .. 60 s at 3 significant digits.
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut errors, mut first_error) = (0u64, None);
            let mut failed_in_a_row = 0u32;
            while Instant::now() < deadline {
                let req = make(counter.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                match sender.send(req).await {
                    Ok((status, body)) => {
                        failed_in_a_row = 0;
                        let _ = hist.record(sent.elapsed().as_micros().max(1) as u64);
                        if is_error(status, &body) {
                            errors += 1;
                            first_error.get_or_insert_with(|| {
                                format!(
                                    "{status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                )
                            });
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        failed_in_a_row += 1;
                        first_error.get_or_insert(e);
                        // The connection reopens on the next send; a server that keeps failing
                        // ends this connection's loop rather than spinning.
                        if failed_in_a_row >= 10 {
                            break;
                        }
                        continue;
                    }
                }
            }
            Ok::<_, String>((hist, errors, first_error))
        }));
    }
    let mut total =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let (mut errors, mut first_error) = (0, None);
    for t in tasks {
        let (hist, e, first) = t.await.map_err(|e| e.to_string())??;
        total.add(&hist).map_err(|e| e.to_string())?;
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = total.len();
    Ok(Outcome {
        requests,
        errors,
        seconds,
        ops_per_sec: requests as f64 / seconds,
        p50_us: total.value_at_quantile(0.50),
        p90_us: total.value_at_quantile(0.90),
        p99_us: total.value_at_quantile(0.99),
        max_us: total.max(),
        first_error,
    })
}
