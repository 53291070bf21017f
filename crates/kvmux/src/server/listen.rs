//! The listener: accepts connections within `max_connections`, waits for a first byte, and serves
//! each with hyper's HTTP/1.1 connection (keep-alive, header timeout, TLS when configured) into
//! [`super::handle`]; drains in-flight requests at shutdown.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{handle, Gateway};
use crate::admin;

/// A TCP stream that re-arms TCP_QUICKACK after a read that leaves a request incomplete. SDKs
/// that write headers and body in two segments with Nagle on would otherwise wait for our delayed
/// ACK (~40 ms a call). A read that holds one whole request needs no quick ACK (the response,
/// written at once, carries the ACK), and re-arming after it cost a `setsockopt` per request (9%
/// of the gateway's CPU for `GET /_kvmux/health` in `perf record`, docs/BENCHMARKS.md).
struct QuickAckStream(TcpStream);

/// Whether `read` (the bytes of one read) is exactly one whole request: a complete head, then
/// exactly the body its Content-Length announces (none without one). Anything else (a partial
/// head, a head whose body has not all arrived, a chunked body, pipelined requests, the middle of
/// a body) is not, and gets the quick ACK as before.
fn whole_request(read: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = request.parse(read) else {
        return false;
    };
    let mut body_len = 0usize;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(n) => body_len = n,
                None => return false,
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return false;
        }
    }
    head_len.checked_add(body_len) == Some(read.len())
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.0).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && !whole_request(&buf.filled()[before..])
        {
            let _ = socket2::SockRef::from(&this.0).set_tcp_quickack(true);
        }
        poll
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Accepts connections until `shutdown` resolves, then drains in-flight requests (at most
/// `drain` long) and returns.
///
/// A connection costs only its task until the client sends its first byte: hyper's buffers (two
/// 8 KiB ones) and, with `tls`, rustls's state are made then. A client gets `header_timeout_secs`
/// to start talking and, with `tls`, to finish the handshake, and then `header_timeout_secs` for
/// each request head; all of it inside the connection's permit, so clients that open TCP and
/// never send a request (or a ClientHello) count against `max_connections` and are cut off.
pub async fn run(
    gw: Arc<Gateway>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
    port: admin::Port,
) {
    let limits = gw.config.limits.clone();
    let header_timeout = Duration::from_secs(limits.header_timeout_secs);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections that have not sent anything yet to close at shutdown (the graceful
    // watcher only knows connections that hyper serves).
    let (stopping, stop_signal) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        let http = http.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let mut stop_signal = stop_signal.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A peek, not `readable()`: tokio may report a fresh socket readable before any byte
            // has arrived, and a peek waits for one.
            let mut first_byte = [0u8; 1];
            tokio::select! {
                ready = tokio::time::timeout(header_timeout, stream.peek(&mut first_byte)) => match ready {
                    Ok(Ok(0)) => return,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %peer, "connection failed before a request");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "nothing sent within the header timeout");
                        return;
                    }
                },
                _ = stop_signal.changed() => return,
            }
            // Every request carries which listener it came in on, for admin::authorize.
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(port);
                handle(gw.clone(), peer, req)
            });
            let stream = QuickAckStream(stream);
            let served = match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake not finished in time");
                                return;
                            }
                        };
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(drain) => tracing::warn!("drain timed out; closing remaining connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::whole_request;

    #[test]
    fn only_a_read_holding_exactly_one_whole_request_skips_the_quick_ack() {
        let get = b"GET /_kvmux/health HTTP/1.1\r\nhost: a\r\n\r\n";
        assert!(whole_request(get));
        let post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        assert!(whole_request(post));
        // The head alone, its body still to come (the Nagle case the quick ACK is for).
        assert!(!whole_request(&post[..post.len() - 5]));
        // Part of the body, or too much of it (a pipelined request behind it).
        assert!(!whole_request(&post[..post.len() - 2]));
        let two = [&get[..], &get[..]].concat();
        assert!(!whole_request(&two));
        // A partial head, the middle of a body, a chunked body, an unreadable length.
        assert!(!whole_request(&get[..10]));
        assert!(!whole_request(b"hello"));
        let chunked =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(!whole_request(chunked));
        assert!(!whole_request(
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"
        ));
    }
}
