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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the thread lets a batch gather after its first line.
pub const LINGER: Duration = Duration::from_millis(2);
/// Pending bytes at which writers wait for the thread.
pub const MAX_PENDING_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
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
            let mut batch = Vec::new();
            loop {
                {
                    let mut pending = worker.lock();
                    while pending.bytes.is_empty() && !pending.closed {
                        pending = worker
                            .work
                            .wait(pending)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    if pending.bytes.is_empty() {
                        return; // closed and nothing left
                    }
                    if !pending.closed && pending.bytes.len() < MAX_PENDING_BYTES / 2 {
                        drop(pending);
                        std::thread::sleep(LINGER);
                        pending = worker.lock();
                    }
                    std::mem::swap(&mut batch, &mut pending.bytes);
                }
                worker.room.notify_all();
                let _ = sink.write_all(&batch);
                let _ = sink.flush();
                batch.clear();
                // A burst's buffer is not kept for ever.
                if batch.capacity() > MAX_PENDING_BYTES {
                    batch = Vec::new();
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

impl Write for BatchedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut pending = self.shared.lock();
        while pending.bytes.len() >= MAX_PENDING_BYTES && !pending.closed {
            pending = self
                .shared
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let starts_batch = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(buf);
        drop(pending);
        if starts_batch {
            self.shared.work.notify_one();
        }
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
}
