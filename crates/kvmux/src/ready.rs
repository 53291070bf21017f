//! The ready signal a test harness waits for: with `--listen 127.0.0.1:0` only the gateway knows
//! its port, so once the listener accepts it says where it is, in two places a launcher can read
//! without polling the port or parsing logs:
//!
//! - `--ready-file PATH`: one JSON object
//!   `{"url":"http://127.0.0.1:PORT","host":"127.0.0.1:PORT","pid":N,"version":"X.Y.Z"}`, written
//!   to a temporary file in the same directory and renamed into place, so a reader polling for
//!   the path sees either nothing or the whole object, never half of it;
//! - stdout's first line, `kvmux ready <url>`, always. Start-up logs also go to stdout, so they
//!   are held back by [`StdoutGate`] until that line is out, and follow it in order.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// The ready file's contents; field order is the documented one.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub url: String,
    pub host: String,
    pub pid: u32,
    pub version: &'static str,
}

impl Ready {
    /// What a client should connect to for a listener bound at `local`. An unspecified address
    /// (`0.0.0.0`, `::`) is not one a client can dial, so the loopback address of the same family
    /// stands in for it: the launcher is on this machine.
    pub fn new(local: SocketAddr, tls: bool) -> Ready {
        let ip = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let host = SocketAddr::new(ip, local.port()).to_string();
        Ready {
            url: format!("{}://{host}", if tls { "https" } else { "http" }),
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and a number always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The first line of stdout.
    pub fn line(&self) -> String {
        format!("kvmux ready {}\n", self.url)
    }
}

/// Removes a ready file left by an earlier run at start-up, before anything else: a launcher that
/// polls for the path must not find the previous gateway's port there.
pub fn remove_stale(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "--ready-file {}: cannot remove the old file: {e}",
            path.display()
        )),
    }
}

/// Writes `contents` to `path` atomically: a temporary file beside it (same directory, so same
/// file system) renamed over it. No fsync: the file tells a live process where to connect, it
/// need not survive a power cut, and an fsync would cost start-up milliseconds.
pub fn write_atomically(path: &Path, contents: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("--ready-file {}: not a file name", path.display()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".{}.partial", std::process::id()));
    let partial: PathBuf = path.with_file_name(partial_name);
    let written = std::fs::write(&partial, contents).and_then(|()| std::fs::rename(&partial, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        format!("--ready-file {}: {e}", path.display())
    })
}

/// The stdout writer of the logs, holding every line back until [`StdoutGate::open`] puts the
/// ready line in front of them. A start-up that fails opens it without a ready line (on drop), so
/// its logs are never lost. Start-up logs are a handful of lines, so the held buffer stays small.
#[derive(Clone)]
pub struct StdoutGate<W> {
    inner: W,
    /// `Some` while closed: the bytes written so far.
    held: Arc<Mutex<Option<Vec<u8>>>>,
    /// Set once the gate is open (after the held bytes went out): later writes go straight
    /// through without taking the lock (one per log line).
    opened: Arc<AtomicBool>,
}

impl<W: Write + Clone> StdoutGate<W> {
    pub fn new(inner: W) -> StdoutGate<W> {
        StdoutGate {
            inner,
            held: Arc::new(Mutex::new(Some(Vec::new()))),
            opened: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set once the gate is open: `logs::install` queues lines past the gate from then on.
    pub fn opened_flag(&self) -> Arc<AtomicBool> {
        self.opened.clone()
    }

    /// A handle that opens the gate (and, dropped unopened, flushes the held logs).
    pub fn opener(&self) -> GateOpener<W> {
        GateOpener(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<u8>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `first` (if any) and then the held logs, and lets later writes straight through.
    /// The lock is held throughout, so no log line can overtake the ready line.
    fn open(&mut self, first: Option<&str>) {
        let mut inner = self.inner.clone();
        let mut held = self.lock();
        if let Some(buffer) = held.take() {
            if let Some(line) = first {
                let _ = inner.write_all(line.as_bytes());
            }
            let _ = inner.write_all(&buffer);
            let _ = inner.flush();
        }
        self.opened.store(true, Ordering::Release);
    }
}

impl<W: Write + Clone> Write for StdoutGate<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.opened.load(Ordering::Acquire) {
            return self.inner.write(buf);
        }
        {
            let mut held = self.lock();
            if let Some(buffer) = held.as_mut() {
                buffer.extend_from_slice(buf);
                return Ok(buf.len());
            }
        }
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.opened.load(Ordering::Acquire) {
            return self.inner.write_all(buf);
        }
        {
            let mut held = self.lock();
            if let Some(buffer) = held.as_mut() {
                buffer.extend_from_slice(buf);
                return Ok(());
            }
        }
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a, W: Write + Clone + 'a> tracing_subscriber::fmt::MakeWriter<'a> for StdoutGate<W> {
    type Writer = StdoutGate<W>;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Opens a [`StdoutGate`] once; dropped unopened it releases the held logs with no ready line.
pub struct GateOpener<W: Write + Clone>(StdoutGate<W>);

impl<W: Write + Clone> GateOpener<W> {
    pub fn open(mut self, ready_line: &str) {
        self.0.open(Some(ready_line));
    }
}

impl<W: Write + Clone> Drop for GateOpener<W> {
    fn drop(&mut self) {
        self.0.open(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::logs::tests::Sink;

    #[test]
    fn logs_written_before_ready_follow_the_ready_line() {
        let sink = Sink::default();
        let mut gate = StdoutGate::new(sink.clone());
        gate.write_all(b"log one\n").unwrap();
        assert!(
            sink.0.lock().unwrap().is_empty(),
            "a log overtook the ready line"
        );
        gate.opener().open("kvmux ready http://127.0.0.1:1\n");
        gate.write_all(b"log two\n").unwrap();
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            "kvmux ready http://127.0.0.1:1\nlog one\nlog two\n"
        );
    }

    #[test]
    fn a_failed_start_still_shows_its_logs() {
        let sink = Sink::default();
        let mut gate = StdoutGate::new(sink.clone());
        gate.write_all(b"opening storage\n").unwrap();
        drop(gate.opener());
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"opening storage\n");
    }

    #[test]
    fn the_ready_object_has_the_documented_fields_in_order() {
        let ready = Ready::new("0.0.0.0:4321".parse().unwrap(), false);
        let json = ready.to_json();
        assert!(
            json.starts_with(r#"{"url":"http://127.0.0.1:4321","host":"127.0.0.1:4321","pid":"#),
            "{json}"
        );
        assert!(json.ends_with(&format!(r#","version":"{}"}}"#, env!("CARGO_PKG_VERSION"))));
        let v6 = Ready::new("[::]:80".parse().unwrap(), true);
        assert_eq!(v6.url, "https://[::1]:80");
        assert_eq!(v6.line(), "kvmux ready https://[::1]:80\n");
    }

    #[test]
    fn the_ready_file_is_replaced_whole_and_leaves_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        std::fs::write(&path, "old").unwrap();
        remove_stale(&path).unwrap();
        assert!(!path.exists());
        remove_stale(&path).unwrap();
        write_atomically(&path, "{\"url\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"url\":\"x\"}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ready.json")]);
    }
}
