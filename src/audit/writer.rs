//! The bounded queue between sessions and the one thread that appends JSON lines.
//!
//! Sessions wait when the queue is full (backpressure, never a dropped record). The writer
//! runs on its own OS thread so file I/O and fsync never stall the async runtime. When a
//! write fails, the batch is kept and retried, and [`AuditSink::can_record`] turns false so
//! `on_audit_failure: block` can refuse statements until the trail recovers.

use super::event::AuditEvent;
use crate::config::{AuditConfig, FsyncPolicy};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Largest number of events serialized into one write.
const BATCH: usize = 1024;
/// Statement texts whose HMAC the writer remembers (see `hmac_of`).
const HMAC_CACHE: usize = 4096;
/// How long the writer pauses after a partial batch (see `run`).
const COALESCE: Duration = Duration::from_millis(2);
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How often the writer checks that the path still names the file it has open (see
/// `reopen_if_moved`).
const REOPEN_CHECK: Duration = Duration::from_secs(1);
/// After shutdown began (every sink dropped), how long a failing trail is retried before
/// the writer gives up. Without a limit a full disk or a dead mount turns SIGTERM into a
/// hang that only SIGKILL ends, which loses the same records with no word about them.
const SHUTDOWN_RETRY: Duration = Duration::from_secs(5);

/// Where sessions send events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditEvent>,
    healthy: Arc<AtomicBool>,
}

impl AuditSink {
    /// Queue an event, waiting while the queue is full. Fails only after shutdown began.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditClosed> {
        self.tx.send(event).await.map_err(|_| AuditClosed)
    }

    /// Whether the trail is writing successfully right now.
    pub fn can_record(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.tx.is_closed()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the audit writer has shut down")]
pub struct AuditClosed;

/// Owns the writer thread; [`AuditWriter::finish`] drains, fsyncs and joins it.
pub struct AuditWriter {
    thread: std::thread::JoinHandle<()>,
}

impl AuditWriter {
    /// Open the file (append) and start the thread. Fails if the file cannot be opened, so a
    /// misconfigured path is a startup error rather than a silent gap.
    pub fn start(config: &AuditConfig) -> std::io::Result<(AuditSink, AuditWriter)> {
        let file = open(&config.path)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let healthy = Arc::new(AtomicBool::new(true));
        let state = WriterState {
            path: config.path.clone(),
            file: Some(file),
            fsync: config.fsync,
            query_max_chars: config.query_max_chars,
            key: config.key.clone(),
            healthy: Arc::clone(&healthy),
            last_sync: Instant::now(),
            last_check: Instant::now(),
            ids: EventIds::seeded(),
            hmacs: std::collections::HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("pgvigil-audit".into())
            .spawn(move || state.run(rx))?;
        Ok((AuditSink { tx, healthy }, AuditWriter { thread }))
    }

    /// Wait until every sink is dropped and every queued event is on disk.
    pub fn finish(self) {
        if self.thread.join().is_err() {
            tracing::error!("audit writer thread panicked");
        }
    }
}

fn open(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct WriterState {
    path: PathBuf,
    file: Option<File>,
    fsync: FsyncPolicy,
    query_max_chars: usize,
    key: Vec<u8>,
    healthy: Arc<AtomicBool>,
    last_sync: Instant,
    /// When `reopen_if_moved` last looked at the path.
    last_check: Instant,
    ids: EventIds,
    hmacs: std::collections::HashMap<usize, (Arc<str>, String)>,
}

/// Version-4 UUIDs from a SplitMix64 stream seeded once from the OS generator: unique per
/// process (a 64-bit counter walk from a random start, with random high bits), and one
/// syscall per process instead of one per event. Event ids need uniqueness, not secrecy.
struct EventIds {
    high: u64,
    state: u64,
}

impl EventIds {
    fn seeded() -> Self {
        let seed = uuid::Uuid::new_v4().as_u128();
        Self {
            high: (seed >> 64) as u64,
            state: seed as u64,
        }
    }

    fn next_id(&mut self) -> String {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bytes =
            ((u128::from(self.high ^ z.rotate_left(17)) << 64) | u128::from(z)).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

impl WriterState {
    fn run(mut self, mut rx: mpsc::Receiver<AuditEvent>) {
        let mut events = Vec::with_capacity(BATCH);
        let mut buf = Vec::with_capacity(64 * 1024);
        while rx.blocking_recv_many(&mut events, BATCH) > 0 {
            let full_batch = events.len() == BATCH;
            for ev in events.drain(..) {
                self.serialize(ev, &mut buf);
            }
            if !self.write_until_ok(&buf, &rx) {
                let lost = buf.iter().filter(|b| **b == b'\n').count() + rx.len();
                tracing::error!(path = %self.path.display(), lost,
                    "audit trail still failing at shutdown; giving up on the unwritten records");
                return;
            }
            buf.clear();
            // Waking this thread costs the sending session a futex syscall per event while
            // the thread waits in recv; pausing briefly after a small batch lets events
            // gather without any wake-ups, at the price of COALESCE extra latency to disk.
            if !full_batch && !rx.is_closed() {
                std::thread::sleep(COALESCE);
            }
        }
        self.sync();
    }

    fn serialize(&mut self, mut ev: AuditEvent, buf: &mut Vec<u8>) {
        if ev.event_id.is_empty() {
            ev.event_id = self.ids.next_id();
        }
        if ev.ts.is_empty() {
            ev.ts = super::event::rfc3339(ev.at);
        }
        if let Some(text) = ev.hmac_source.take() {
            ev.query_hmac = Some(self.hmac_of(text));
        }
        if let Some(q) = ev.query.as_mut() {
            cap_chars(q, self.query_max_chars);
        }
        // Serializing plain data to a Vec cannot fail; if it ever did, record that fact
        // rather than lose the line silently.
        if serde_json::to_writer(&mut *buf, &ev).is_err() {
            tracing::error!(event_id = %ev.event_id, "audit event could not be serialized");
        }
        buf.push(b'\n');
    }

    /// Prepared statements send the same text object with every execution; its HMAC is
    /// kept by address while the text is still held elsewhere (the statement registry),
    /// which the cache entry's own reference keeps from being reused.
    fn hmac_of(&mut self, text: Arc<str>) -> String {
        let key = Arc::as_ptr(&text) as *const u8 as usize;
        if let Some((_, mac)) = self.hmacs.get(&key) {
            return mac.clone();
        }
        let mac = self.hmac_hex(&text);
        if Arc::strong_count(&text) > 1 {
            if self.hmacs.len() >= HMAC_CACHE {
                self.hmacs.clear();
            }
            self.hmacs.insert(key, (text, mac.clone()));
        }
        mac
    }

    fn hmac_hex(&self, text: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(text.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Keep the batch until it is written: a full disk delays records, it does not lose them.
    /// Returns false only when shutdown began and the trail kept failing for
    /// [`SHUTDOWN_RETRY`].
    fn write_until_ok(&mut self, buf: &[u8], rx: &mpsc::Receiver<AuditEvent>) -> bool {
        let mut closed_at: Option<Instant> = None;
        loop {
            match self.write(buf) {
                Ok(()) => {
                    if !self.healthy.swap(true, Ordering::Relaxed) {
                        tracing::warn!(path = %self.path.display(), "audit trail recovered");
                    }
                    return true;
                }
                Err(e) => {
                    if self.healthy.swap(false, Ordering::Relaxed) {
                        tracing::error!(path = %self.path.display(), error = %e, "audit write failed; retrying");
                    }
                    self.file = None;
                    if rx.is_closed() {
                        let since = *closed_at.get_or_insert_with(Instant::now);
                        if since.elapsed() >= SHUTDOWN_RETRY {
                            return false;
                        }
                    }
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.last_check.elapsed() >= REOPEN_CHECK {
            self.last_check = Instant::now();
            self.reopen_if_moved();
        }
        if self.file.is_none() {
            self.file = Some(open(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("audit file not open"));
        };
        file.write_all(buf)?;
        let due = match self.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => self.last_sync.elapsed() >= Duration::from_secs(1),
            FsyncPolicy::Never => false,
        };
        if due {
            file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// A file removed or renamed under the writer (log rotation by rename, or a mistake)
    /// would keep receiving the records through the open handle while nothing can read
    /// them at the path. When the path no longer names the open file (another device and
    /// inode, or nothing at all), the old file is synced and closed so the next write opens
    /// the path afresh. A path that cannot be inspected for another reason is left alone.
    fn reopen_if_moved(&mut self) {
        let Some(file) = self.file.as_ref() else {
            return;
        };
        let moved = match (file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(open), Ok(at_path)) => !same_file(&open, &at_path),
            (_, Err(e)) => e.kind() == std::io::ErrorKind::NotFound,
            (Err(_), Ok(_)) => false,
        };
        if !moved {
            return;
        }
        tracing::warn!(path = %self.path.display(),
            "audit file was removed or renamed; reopening the path");
        if let Some(old) = self.file.take() {
            if let Err(e) = old.sync_all() {
                tracing::error!(error = %e, "audit fsync of the moved file failed");
            }
        }
    }

    fn sync(&mut self) {
        if let Some(file) = self.file.as_mut() {
            if let Err(e) = file.sync_all() {
                tracing::error!(error = %e, "audit fsync at shutdown failed");
            }
        }
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// Truncate to at most `max` characters on a char boundary, marking the cut.
fn cap_chars(s: &mut String, max: usize) {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
        s.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_chars_respects_char_boundaries() {
        let mut s = "ééééé".to_string();
        cap_chars(&mut s, 2);
        assert_eq!(s, "éé…");
        let mut s = "abc".to_string();
        cap_chars(&mut s, 3);
        assert_eq!(s, "abc");
    }
}

#[cfg(test)]
mod id_tests {
    use super::EventIds;

    #[test]
    fn event_ids_are_v4_uuids_and_distinct() {
        let mut ids = EventIds::seeded();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next_id();
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert!(seen.insert(id));
        }
    }
}
