//! The log writer behind `kvmux serve`'s stdout: log lines are appended to one shared buffer and
//! written out in batches by a background thread, a few milliseconds after the first line of a
//! batch. Under load that is one `write` and one wake-up per batch instead of per line (the
//! request path paid a channel send, an allocation and a wake-up of the writer thread for each
//! request's log line; the writer paid a `write` syscall for each).
//!
//! Nothing is dropped: past [`MAX_PENDING_BYTES`] writers wait for the thread to catch up. Lines
//! stay whole (a line is one `write_all`), in order. Dropping the [`FlushGuard`] writes what is
//! pending and stops the thread.

use std::io::Write;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How long the thread lets a batch gather after its first line.
pub const LINGER: Duration = Duration::from_millis(2);
/// Pending bytes at which writers wait for the thread.
pub const MAX_PENDING_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Lines queued as data ([`Line`]), formatted by the thread: each goes in front of
    /// `bytes[line.at..]`, so they keep their order with the lines written as bytes.
    lines: Vec<QueuedLine>,
    /// The text fields of `lines`.
    text: String,
    closed: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.lines.is_empty()
    }

    /// What the batch holds, roughly, in bytes (for [`MAX_PENDING_BYTES`]).
    fn weight(&self) -> usize {
        self.bytes.len() + self.text.len() + self.lines.len() * std::mem::size_of::<QueuedLine>()
    }
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a batch starts (the buffer was empty) and at close.
    work: Condvar,
    /// Signalled when the thread has taken the buffer.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cheap, cloneable writer into the batch (one per log event, as tracing asks for).
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes what is pending and stops the thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the thread that writes batches to `sink`.
pub fn batched<W: Write + Send + 'static>(mut sink: W) -> (BatchedWriter, FlushGuard) {
    let shared = Arc::new(Shared::default());
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("kvmux-log".into())
        .spawn(move || {
            let mut batch = Pending::default();
            let mut rendered = Vec::new();
            let mut clock = Clock::default();
            loop {
                {
                    let mut pending = worker.lock();
                    while pending.is_empty() && !pending.closed {
                        pending = worker
                            .work
                            .wait(pending)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    if pending.is_empty() {
                        return; // closed and nothing left
                    }
                    if !pending.closed && pending.weight() < MAX_PENDING_BYTES / 2 {
                        drop(pending);
                        std::thread::sleep(LINGER);
                        pending = worker.lock();
                    }
                    std::mem::swap(&mut batch.bytes, &mut pending.bytes);
                    std::mem::swap(&mut batch.lines, &mut pending.lines);
                    std::mem::swap(&mut batch.text, &mut pending.text);
                }
                worker.room.notify_all();
                let out = if batch.lines.is_empty() {
                    &batch.bytes
                } else {
                    render_batch(&batch, &mut clock, &mut rendered);
                    &rendered
                };
                let _ = sink.write_all(out);
                let _ = sink.flush();
                batch.bytes.clear();
                batch.lines.clear();
                batch.text.clear();
                rendered.clear();
                // A burst's buffers are not kept for ever.
                if batch.bytes.capacity() > MAX_PENDING_BYTES {
                    batch = Pending::default();
                }
                if rendered.capacity() > MAX_PENDING_BYTES {
                    rendered = Vec::new();
                }
            }
        });
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("kvmux: cannot start the log writer thread: {e}");
            None
        }
    };
    (
        BatchedWriter {
            shared: shared.clone(),
        },
        FlushGuard { shared, thread },
    )
}

impl BatchedWriter {
    /// Adds to the batch (waiting while it is full) and wakes the thread if it starts one.
    fn append(&self, add: impl FnOnce(&mut Pending)) {
        let mut pending = self.shared.lock();
        while pending.weight() >= MAX_PENDING_BYTES && !pending.closed {
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let starts_batch = pending.is_empty();
        add(&mut pending);
        drop(pending);
        if starts_batch {
            self.shared.work.notify_one();
        }
    }

    /// Queues `line` as data, stamped `time`: the thread formats it.
    fn queue(&self, time: SystemTime, line: &Line<'_>) {
        self.append(|pending| {
            let at = pending.bytes.len();
            let mut keep = |text: &str| {
                let start = pending.text.len();
                pending.text.push_str(text);
                start..pending.text.len()
            };
            let kind = line.map_text(|text| keep(text));
            pending.lines.push(QueuedLine { at, time, kind });
        });
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.append(|pending| pending.bytes.extend_from_slice(buf));
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A per-request log line, as the request path hands it over: the `request` line every answered
/// request writes, and the `admin call` line of an admin call. The writer thread formats it,
/// byte for byte as tracing-subscriber's `fmt` layer formats the same event (without colour and
/// target), so the request pays for copying a few fields, not for formatting: through
/// tracing-subscriber the two lines of a `GET /_kvmux/health` were 18% of its CPU
/// (docs/BENCHMARKS.md).
pub type Line<'a> = LineOf<&'a str>;

/// A [`Line`] with its text fields of type `T`: borrowed (`&str`) where a request hands it over,
/// ranges of the batch's text buffer while it is queued.
#[derive(Debug, Clone, Copy)]
pub enum LineOf<T> {
    /// `request request_id=… dialect="…" operation="…" account="…" status=… code="…" latency_us=…`
    Request {
        request_id: T,
        dialect: &'static str,
        operation: &'static str,
        account: Option<T>,
        status: u16,
        code: Option<T>,
        latency_us: u64,
    },
    /// `admin call request_id="…" peer=… method=… path=… status=…`
    AdminCall {
        request_id: T,
        peer: SocketAddr,
        method: T,
        path: T,
        status: u16,
    },
}

impl<T> LineOf<T> {
    /// The same line with each text field mapped by `text`.
    fn map_text<U>(&self, mut text: impl FnMut(&T) -> U) -> LineOf<U> {
        match self {
            LineOf::Request {
                request_id,
                dialect,
                operation,
                account,
                status,
                code,
                latency_us,
            } => LineOf::Request {
                request_id: text(request_id),
                dialect,
                operation,
                account: account.as_ref().map(&mut text),
                status: *status,
                code: code.as_ref().map(&mut text),
                latency_us: *latency_us,
            },
            LineOf::AdminCall {
                request_id,
                peer,
                method,
                path,
                status,
            } => LineOf::AdminCall {
                request_id: text(request_id),
                peer: *peer,
                method: text(method),
                path: text(path),
                status: *status,
            },
        }
    }
}

/// A [`Line`] in a batch: its text fields are ranges of [`Pending::text`].
struct QueuedLine {
    /// Where it goes among the batch's bytes.
    at: usize,
    time: SystemTime,
    kind: QueuedKind,
}

type QueuedKind = LineOf<Range<usize>>;

impl QueuedKind {
    fn line<'t>(&self, text: &'t str) -> Line<'t> {
        self.map_text(|range| text.get(range.clone()).unwrap_or_default())
    }
}

/// The batch's bytes with its queued lines formatted in their places.
fn render_batch(batch: &Pending, clock: &mut Clock, out: &mut Vec<u8>) {
    let mut from = 0;
    for queued in &batch.lines {
        out.extend_from_slice(batch.bytes.get(from..queued.at).unwrap_or_default());
        format_line(&queued.kind.line(&batch.text), queued.time, clock, out);
        from = queued.at;
    }
    out.extend_from_slice(batch.bytes.get(from..).unwrap_or_default());
}

/// The timestamp's date and time of day, kept for the second it was made for: formatting a
/// date is most of a timestamp's cost, and a batch's lines share their second.
#[derive(Default)]
struct Clock {
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS.`
    prefix: String,
}

impl Clock {
    /// Writes `time` as tracing-subscriber's `SystemTime` timer does (RFC 3339, UTC, µs).
    fn write(&mut self, time: SystemTime, out: &mut Vec<u8>) {
        let since_epoch = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            self.prefix.clear();
            let at = time::OffsetDateTime::UNIX_EPOCH
                + time::Duration::seconds(i64::try_from(second).unwrap_or(i64::MAX));
            use std::fmt::Write as _;
            let _ = write!(
                self.prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            self.second = Some(second);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let micros = since_epoch.subsec_micros();
        let mut digits = [b'0'; 6];
        let mut rest = micros;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
}

/// Appends `line` as one log line, stamped `time`.
fn format_line(line: &Line<'_>, time: SystemTime, clock: &mut Clock, out: &mut Vec<u8>) {
    clock.write(time, out);
    out.extend_from_slice(b"  INFO ");
    match *line {
        Line::Request {
            request_id,
            dialect,
            operation,
            account,
            status,
            code,
            latency_us,
        } => {
            out.extend_from_slice(b"request request_id=");
            out.extend_from_slice(request_id.as_bytes());
            out.extend_from_slice(b" dialect=");
            quoted(dialect, out);
            out.extend_from_slice(b" operation=");
            quoted(operation, out);
            out.extend_from_slice(b" account=");
            quoted(account.unwrap_or("-"), out);
            out.extend_from_slice(b" status=");
            number(u64::from(status), out);
            out.extend_from_slice(b" code=");
            quoted(code.unwrap_or("-"), out);
            out.extend_from_slice(b" latency_us=");
            number(latency_us, out);
        }
        Line::AdminCall {
            request_id,
            peer,
            method,
            path,
            status,
        } => {
            out.extend_from_slice(b"admin call request_id=");
            quoted(request_id, out);
            use std::io::Write as _;
            let _ = write!(
                out,
                " peer={peer} method={method} path={path} status={status}"
            );
        }
    }
    out.push(b'\n');
}

/// `text` as `{:?}` writes it (tracing-subscriber records a `&str` field with `Debug`), without
/// the formatting machinery for the usual text that needs no escape.
fn quoted(text: &str, out: &mut Vec<u8>) {
    if text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ')
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        use std::io::Write as _;
        let _ = write!(out, "{text:?}");
    }
}

fn number(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Where [`emit`] puts lines: the batch behind stdout, once [`install`]ed by `kvmux serve`.
struct Lines {
    batch: BatchedWriter,
    /// Set once the ready line is out (`ready::StdoutGate`); until then a line is formatted at
    /// once and written through `gate`, which holds it back behind the ready line.
    open: Arc<AtomicBool>,
    gate: Mutex<Box<dyn Write + Send>>,
}

static LINES: OnceLock<Lines> = OnceLock::new();

/// Sends [`emit`]'s lines to `batch` (formatted by its thread) once `open` is set, and through
/// `gate` before that. Without it (a gateway embedded in a test, or stdout on a terminal, where
/// the lines are coloured) they go through `tracing` as any other event.
pub fn install(batch: BatchedWriter, open: Arc<AtomicBool>, gate: Box<dyn Write + Send>) {
    let _ = LINES.set(Lines {
        batch,
        open,
        gate: Mutex::new(gate),
    });
}

/// Logs one per-request line at INFO, if `RUST_LOG` lets INFO through for the module that
/// logged it before (`kvmux::server` for `request`, `kvmux::admin` for `admin call`).
pub fn emit(line: Line<'_>) {
    let enabled = match line {
        Line::Request { .. } => tracing::enabled!(target: "kvmux::server", tracing::Level::INFO),
        Line::AdminCall { .. } => tracing::enabled!(target: "kvmux::admin", tracing::Level::INFO),
    };
    if !enabled {
        return;
    }
    let Some(lines) = LINES.get() else {
        return through_tracing(&line);
    };
    let time = SystemTime::now();
    if lines.open.load(Ordering::Acquire) {
        return lines.batch.queue(time, &line);
    }
    let mut formatted = Vec::with_capacity(256);
    format_line(&line, time, &mut Clock::default(), &mut formatted);
    let mut gate = lines.gate.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = gate.write_all(&formatted);
}

/// The same line as a `tracing` event (the format [`format_line`] reproduces).
fn through_tracing(line: &Line<'_>) {
    match *line {
        Line::Request {
            request_id,
            dialect,
            operation,
            account,
            status,
            code,
            latency_us,
        } => tracing::info!(
            target: "kvmux::server",
            request_id = %request_id,
            dialect,
            operation,
            account = account.unwrap_or("-"),
            status,
            code = code.unwrap_or("-"),
            latency_us,
            "request"
        ),
        Line::AdminCall {
            request_id,
            peer,
            method,
            path,
            status,
        } => tracing::info!(
            target: "kvmux::admin",
            request_id,
            peer = %peer,
            method = %method,
            path = %path,
            status,
            "admin call"
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A writer whose bytes a test can read back (also the stdout gate's tests in ready.rs).
    #[derive(Clone, Default)]
    pub(crate) struct Sink(pub(crate) Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_and_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..2000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expected);
        }
    }

    #[test]
    fn a_batch_larger_than_the_limit_waits_and_is_still_written() {
        let sink = Sink::default();
        let (mut writer, guard) = batched(sink.clone());
        let line = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            writer.write_all(&line).unwrap();
        }
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().len(), 10 << 20);
    }

    /// What tracing-subscriber's `fmt` layer, as `kvmux serve` configures it (no target, no
    /// colour), writes for `line`, with `TIME` in place of the timestamp.
    fn through_fmt(line: &Line<'_>) -> String {
        struct Fixed;
        impl tracing_subscriber::fmt::time::FormatTime for Fixed {
            fn format_time(
                &self,
                w: &mut tracing_subscriber::fmt::format::Writer<'_>,
            ) -> std::fmt::Result {
                w.write_str("TIME")
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_target(false)
            .with_ansi(false)
            .with_timer(Fixed)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || through_tracing(line));
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// [`format_line`]'s line with `TIME` in place of the timestamp.
    fn formatted(line: &Line<'_>, time: SystemTime) -> String {
        let mut out = Vec::new();
        format_line(line, time, &mut Clock::default(), &mut out);
        let text = String::from_utf8(out).unwrap();
        let (stamp, rest) = text.split_once(' ').unwrap();
        assert_eq!(stamp, rfc3339_micros(time));
        format!("TIME {rest}")
    }

    fn rfc3339_micros(time: SystemTime) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        time::OffsetDateTime::from(time).format(&format).unwrap()
    }

    #[test]
    fn a_request_line_is_formatted_as_tracing_formats_the_same_event() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_194_550_041_775);
        let line = Line::Request {
            request_id: "4fa06536-2970-4169-97ef-37996cdac5af",
            dialect: "tencent",
            operation: "EdgeKVGet",
            account: Some("dev"),
            status: 200,
            code: None,
            latency_us: 54,
        };
        assert_eq!(
            formatted(&line, time),
            "TIME  INFO request request_id=4fa06536-2970-4169-97ef-37996cdac5af \
             dialect=\"tencent\" operation=\"EdgeKVGet\" account=\"dev\" status=200 code=\"-\" \
             latency_us=54\n"
        );
        assert_eq!(formatted(&line, time), through_fmt(&line));
        let admin = Line::AdminCall {
            request_id: "d4fe493b",
            peer: "127.0.0.1:55450".parse().unwrap(),
            method: "GET",
            path: "/_kvmux/health",
            status: 200,
        };
        assert_eq!(
            formatted(&admin, time),
            "TIME  INFO admin call request_id=\"d4fe493b\" peer=127.0.0.1:55450 method=GET \
             path=/_kvmux/health status=200\n"
        );
        assert_eq!(formatted(&admin, time), through_fmt(&admin));
    }

    proptest::proptest! {
        /// Any text in any field (quotes, backslashes, control characters, any Unicode) and any
        /// time: the same bytes as tracing-subscriber writes.
        #[test]
        fn any_line_is_formatted_as_tracing_formats_it(
            request_id in ".{0,40}",
            account in proptest::option::of(".{0,40}"),
            code in proptest::option::of(".{0,20}"),
            path in ".{0,60}",
            status in proptest::num::u16::ANY,
            latency_us in proptest::num::u64::ANY,
            micros in 0u64..8_000_000_000_000_000,
        ) {
            let time = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            let line = Line::Request {
                request_id: &request_id,
                dialect: "huawei",
                operation: "get-kv",
                account: account.as_deref(),
                status,
                code: code.as_deref(),
                latency_us,
            };
            proptest::prop_assert_eq!(formatted(&line, time), through_fmt(&line));
            let admin = Line::AdminCall {
                request_id: &request_id,
                peer: "[::1]:8080".parse().unwrap(),
                method: "DELETE",
                path: &path,
                status,
            };
            proptest::prop_assert_eq!(formatted(&admin, time), through_fmt(&admin));
        }
    }

    #[test]
    fn queued_lines_are_written_in_their_places_among_other_lines() {
        let sink = Sink::default();
        let (mut writer, guard) = batched(sink.clone());
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        writer.write_all(b"first\n").unwrap();
        for i in 0..3u64 {
            let id = format!("id-{i}");
            writer.queue(
                time,
                &Line::Request {
                    request_id: &id,
                    dialect: "aliyun",
                    operation: "GetKv",
                    account: None,
                    status: 404,
                    code: Some("InvalidKey.NotFound"),
                    latency_us: i,
                },
            );
            writer.write_all(format!("after {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = std::iter::once("first\n".to_string())
            .chain((0..3).map(|i| {
                format!(
                    "2027-01-15T08:00:00.000000Z  INFO request request_id=id-{i} \
                     dialect=\"aliyun\" operation=\"GetKv\" account=\"-\" status=404 \
                     code=\"InvalidKey.NotFound\" latency_us={i}\nafter {i}\n"
                )
            }))
            .collect();
        assert_eq!(text, expected);
    }
}
