//! The embedded command log: an append-only journal per shard, in segment files.
//!
//! A shard's journal is a directory of segments named by the offset of their first record
//! (`00000000000000000001.log`, ...). The writer starts a new segment once the current one
//! passes the configured size; once a snapshot covers every record of a segment, acknowledging
//! deletes it, so disk use and recovery time stay bounded by the snapshot interval.
//!
//! Each record is framed as `len: u32 LE | crc32(payload): u32 LE | payload` (the payload is
//! [`Record::encode`]'s: the postcard encoding of a [`LogRecord`] in a command log). A single writer thread takes every append waiting at
//! that moment, writes them with one `write` and makes them durable with one `fdatasync`
//! (group commit): the cost of the sync is shared by the whole batch, not paid per order.
//!
//! The writer extends a segment with zeros ahead of its records and writes records at their
//! positions, so most syncs flush data into a file whose size does not change.
//!
//! On open the segments are scanned; zeros after the last record are preallocated space. A
//! record of the last segment that is cut short or fails its CRC (a power cut in the middle of a
//! write) is reported and the segment is truncated just before it, zeros and all, so that no
//! stale byte of the torn write can later be read as a record. Nothing before it is lost, and
//! nothing after it was ever acknowledged: an append returns only after its sync. Damage in an earlier segment, or a gap between segments, is
//! real corruption: opening fails rather than drop acknowledged records.

use crate::log::{CommandLog, Entry, LogError, LogRecord};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

use crate::frame::{self, HEADER};

/// What a journal holds: a record type with its size limit and how an append stamps it.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Largest record accepted when reading a journal.
    const MAX_BYTES: u32;
    /// Stamps the record with its offset as it is appended.
    fn stamp(&mut self, _offset: u64) {}
    /// Appends the record's payload to `out`: its postcard encoding, unless the type says
    /// otherwise.
    fn encode(&self, out: &mut Vec<u8>) {
        frame::postcard_into(self, out);
    }
    /// Reads a payload [`Record::encode`] wrote.
    fn decode(payload: &[u8]) -> Result<Self, String> {
        frame::from_postcard(payload)
    }
}

impl Record for LogRecord {
    /// A command is a few dozen bytes.
    const MAX_BYTES: u32 = 64 * 1024;
    fn stamp(&mut self, offset: u64) {
        self.assign(offset);
    }
}

/// How the journal writes.
#[derive(Clone, Copy, Debug)]
pub struct JournalConfig {
    /// Make appends durable with `fdatasync`. Turning it off trades durability on power loss
    /// for speed.
    pub fsync: bool,
    /// With `fsync`: sync every batch before answering it (a command log: an append is
    /// acknowledged only once durable), or only when asked ([`Journal::sync`]) and on close,
    /// for a journal whose records can be written again after a crash (the event stream).
    pub sync_each_batch: bool,
    /// Most appends committed by one write and sync.
    pub max_batch: usize,
    /// A segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// The writer extends a segment with zeros this far ahead of its records, so that a sync
    /// finds the file's size unchanged and flushes only the data (an append that grows the file
    /// also commits its metadata: here 51 µs of CPU per `fdatasync` against 33 µs).
    pub preallocate_bytes: u64,
    /// Most unacknowledged records kept in memory for readers; older ones are read back from
    /// the segment files. A reader that falls behind (a worker during a burst) then costs file
    /// reads instead of memory that grows with its backlog.
    pub memory_records: usize,
    /// While appends keep coming, the writer looks for them this often instead of being woken
    /// for each (a wake is a futex call on the appending thread, the request thread in the
    /// embedded exchange); after [`IDLE_POLLS`] empty looks it waits to be woken again. For a
    /// journal nobody waits on per append (the event stream); `None` wakes it for every append.
    pub poll_every: Option<Duration>,
}

/// Empty looks after which a polling writer ([`JournalConfig::poll_every`]) waits to be woken.
pub const IDLE_POLLS: u32 = 100;

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            fsync: true,
            sync_each_batch: true,
            max_batch: 4096,
            segment_bytes: 256 << 20,
            preallocate_bytes: 256 << 10,
            memory_records: 16_384,
            poll_every: None,
        }
    }
}

/// What opening a journal found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Records found intact.
    pub records: u64,
    /// Segment files found.
    pub segments: usize,
    /// Bytes cut off the end (a torn or corrupt tail), 0 when the file was clean.
    pub truncated_bytes: u64,
    /// Why the tail was cut, when it was.
    pub reason: Option<String>,
}

/// Answers once a submitted append is durable, with the offset its first record was given
/// (the records keep their order: the rest follow it).
pub type Appended = oneshot::Receiver<Result<u64, LogError>>;

struct WriteReq<R> {
    records: Vec<R>,
    /// Make everything written so far durable before answering.
    sync: bool,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

/// One segment file.
struct Segment {
    /// Offset of its first record.
    first: u64,
    path: PathBuf,
    /// A handle for positioned reads.
    file: Arc<File>,
    /// Its length: where the next record of the last segment goes.
    len: u64,
}

struct State<R> {
    last: u64,
    /// Oldest first; the last one is being written.
    segments: VecDeque<Segment>,
    /// Position within its segment of each record from `positions_base` on.
    positions: VecDeque<u64>,
    positions_base: u64,
    /// The newest records appended since the journal was opened and not yet acknowledged, at
    /// most `memory_records` of them.
    tail: VecDeque<(u64, R)>,
    closed: bool,
    failed: Option<String>,
}

impl<R> State<R> {
    /// Offset of the first record held in memory.
    fn tail_base(&self) -> u64 {
        self.tail.front().map_or(self.last + 1, |e| e.0)
    }
}

struct Shared<R> {
    dir: PathBuf,
    state: Mutex<State<R>>,
    notify: Notify,
    /// `fdatasync`s done so far.
    syncs: AtomicU64,
}

/// A shard's journal file. See the module docs.
pub struct Journal<R: Record = LogRecord> {
    shared: Arc<Shared<R>>,
    sender: Mutex<Option<mpsc::Sender<WriteReq<R>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn decode<R: Record>(payload: &[u8], crc: u32, offset: u64) -> Result<R, LogError> {
    frame::decode_with(payload, crc, R::decode)
        .map_err(|reason| LogError::Corrupt { offset, reason })
}

/// Scans a journal, returning the positions of the intact records and where they end, and why
/// reading stopped early if it did. A whole record that does not decode is refused (an error),
/// never truncated: it is another format's, not a torn write.
fn scan<R: Record>(
    file: &File,
    first: u64,
) -> Result<(VecDeque<u64>, u64, Option<String>), LogError> {
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut positions = VecDeque::new();
    let (end, stopped) =
        frame::read_frames_with(reader, R::MAX_BYTES, first, R::decode, |pos, _| {
            positions.push_back(pos)
        })?;
    match stopped {
        Some(frame::Stop::Undecodable(reason)) => Err(LogError::Corrupt {
            offset: first + positions.len() as u64,
            reason,
        }),
        Some(frame::Stop::Torn(reason)) => Ok((positions, end, Some(reason))),
        None => Ok((positions, end, None)),
    }
}

impl<R: Record> Journal<R> {
    /// Opens (or creates) the journal in `dir`, truncating a torn or corrupt tail.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<(Self, OpenReport), LogError> {
        std::fs::create_dir_all(dir)?;
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log")
                && let Some(first) = path
                    .file_stem()
                    .and_then(|s| s.to_str()?.parse::<u64>().ok())
            {
                found.push((first, path));
            }
        }
        found.sort_unstable();
        if found.is_empty() {
            found.push((1, segment_path(dir, 1)));
        }
        let mut segments = VecDeque::new();
        let mut positions = VecDeque::new();
        let positions_base = found[0].0;
        let mut expected = positions_base;
        let (mut truncated_bytes, mut reason) = (0, None);
        let count = found.len();
        for (i, (first, path)) in found.into_iter().enumerate() {
            if first != expected {
                return Err(LogError::Corrupt {
                    offset: expected,
                    reason: format!(
                        "segment {} starts at {first}; records {expected}.. are missing",
                        path.display()
                    ),
                });
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let len = file.metadata()?.len();
            let (found_positions, end, why) = scan::<R>(&file, first)?;
            // Space the writer preallocated is zeros: not a torn tail. Anything else after the
            // last intact record is, and goes (so no stale bytes lie beyond the records).
            if end < len && !zeros(&file, end, len)? {
                if i + 1 < count {
                    return Err(LogError::Corrupt {
                        offset: first + found_positions.len() as u64,
                        reason: format!(
                            "{} in {}, which is not the last segment",
                            why.unwrap_or_else(|| "trailing bytes".into()),
                            path.display()
                        ),
                    });
                }
                tracing::warn!(
                    path = %path.display(),
                    kept_records = found_positions.len(),
                    truncated_bytes = len - end,
                    reason = why.as_deref().unwrap_or("trailing bytes"),
                    "journal tail is torn or corrupt: truncating it"
                );
                file.set_len(end)?;
                file.sync_all()?;
                truncated_bytes = len - end;
                reason = Some(why.unwrap_or_else(|| "trailing bytes".into()));
            }
            expected += found_positions.len() as u64;
            positions.extend(found_positions);
            segments.push_back(Segment {
                first,
                path,
                file: Arc::new(file),
                len: end,
            });
        }
        // Make the files' existence durable too.
        File::open(dir)?.sync_all()?;
        let last = expected - 1;
        let records = last + 1 - positions_base;
        let writer_file = {
            let current = segments.back().expect("at least one segment");
            OpenOptions::new().write(true).open(&current.path)?
        };
        let report = OpenReport {
            records,
            segments: segments.len(),
            truncated_bytes,
            reason,
        };
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                last,
                segments,
                positions,
                positions_base,
                tail: VecDeque::new(),
                closed: false,
                failed: None,
            }),
            notify: Notify::new(),
            syncs: AtomicU64::new(0),
        });
        let (sender, receiver) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(writer_shared, writer_file, receiver, config))?;
        let journal = Self {
            shared,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        };
        Ok((journal, report))
    }

    /// How many times the journal has synced its file so far.
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// How many records it holds in memory for readers now.
    pub fn held_in_memory(&self) -> usize {
        self.shared.state.lock().tail.len()
    }

    /// How many segment files the journal has now.
    pub fn segment_count(&self) -> usize {
        self.shared.state.lock().segments.len()
    }

    /// Reads records from the segment files (those no longer held in memory), never across a
    /// segment boundary (the caller asks again for the rest).
    fn read_file(&self, after: u64, max: usize, tail_base: u64) -> Result<Vec<(u64, R)>, LogError> {
        let first = after + 1;
        let (file, positions) = {
            let st = self.shared.state.lock();
            if first < st.positions_base {
                return Err(LogError::Failed(format!(
                    "offset {first} was acknowledged and let go"
                )));
            }
            let i = st.segments.partition_point(|s| s.first <= first) - 1;
            let segment = &st.segments[i];
            let segment_last = st
                .segments
                .get(i + 1)
                .map_or(st.last, |next| next.first - 1);
            let upto = (tail_base - 1).min(after + max as u64).min(segment_last);
            let from = (first - st.positions_base) as usize;
            let to = (upto + 1 - st.positions_base) as usize;
            let mut ps: Vec<u64> = st.positions.range(from..to).copied().collect();
            // The end of the last record: the next record's position in this segment, or its end.
            let next_in_segment = (upto < segment_last)
                .then(|| st.positions.get(to).copied())
                .flatten();
            ps.push(next_in_segment.unwrap_or(segment.len));
            (Arc::clone(&segment.file), ps)
        };
        let (start, stop) = (positions[0], *positions.last().expect("at least one"));
        let mut buf = vec![0u8; (stop - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        let mut out = Vec::with_capacity(positions.len() - 1);
        for (i, w) in positions.windows(2).enumerate() {
            let (a, b) = ((w[0] - start) as usize, (w[1] - start) as usize);
            let offset = first + i as u64;
            let rec = &buf[a..b];
            let len = u32::from_le_bytes(rec[..4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(rec[4..8].try_into().expect("4 bytes"));
            if len != rec.len() - HEADER {
                return Err(LogError::Corrupt {
                    offset,
                    reason: "length does not match the index".into(),
                });
            }
            out.push((offset, decode(&rec[HEADER..], crc, offset)?));
        }
        Ok(out)
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// Whether `file` holds only zeros from `from` to `to`.
fn zeros(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Extends `file` with zeros from `allocated` to `to` (it is written at positions, not
/// appended to, so its records end before its length).
fn preallocate(file: &File, allocated: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let mut at = allocated;
    while at < to {
        let n = ((to - at) as usize).min(ZEROS.len());
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Starts a new segment for records from `first` on: creates the file and makes its name durable.
fn new_segment(dir: &Path, first: u64) -> std::io::Result<(File, Segment)> {
    let path = segment_path(dir, first);
    let writer = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let reader = File::open(&path)?;
    File::open(dir)?.sync_all()?;
    Ok((
        writer,
        Segment {
            first,
            path,
            file: Arc::new(reader),
            len: 0,
        },
    ))
}

/// Makes what was written to `file` durable, and counts it.
fn sync_file<R>(shared: &Shared<R>, file: &File) -> std::io::Result<()> {
    shared.syncs.fetch_add(1, Ordering::Relaxed);
    file.sync_data()
}

fn write_loop<R: Record>(
    shared: Arc<Shared<R>>,
    mut file: File,
    receiver: mpsc::Receiver<WriteReq<R>>,
    config: JournalConfig,
) {
    let mut buf = Vec::with_capacity(1 << 20);
    // Written since the last sync (only ever true when batches are not synced each).
    let mut unsynced = false;
    // The file's length: records, then the zeros preallocated after them.
    let mut allocated = file.metadata().map_or(0, |m| m.len());
    let commit_seconds = metrics::histogram!("exchange_journal_commit_seconds");
    let batch_records = metrics::histogram!("exchange_journal_batch_records");
    let mut idle = 0;
    while let Some(first) = next_request(&receiver, config.poll_every, &mut idle) {
        let mut reqs = vec![first];
        let mut count = reqs[0].records.len();
        while count < config.max_batch {
            match receiver.try_recv() {
                Ok(r) => {
                    count += r.records.len();
                    reqs.push(r);
                }
                Err(_) => break,
            }
        }
        let (mut offset, mut end, failed) = {
            let st = shared.state.lock();
            (
                st.last,
                st.segments.back().map_or(0, |s| s.len),
                st.failed.clone(),
            )
        };
        if let Some(why) = failed {
            for r in reqs {
                let _ = r.reply.send(Err(LogError::Failed(why.clone())));
            }
            continue;
        }
        buf.clear();
        let mut positions = Vec::with_capacity(count);
        // The records move into the journal's memory; each request learns its first offset.
        let mut entries = Vec::with_capacity(count);
        let mut firsts = Vec::with_capacity(reqs.len());
        for req in &mut reqs {
            firsts.push(offset + 1);
            for mut rec in req.records.drain(..) {
                offset += 1;
                rec.stamp(offset);
                positions.push(end + buf.len() as u64);
                frame::encode_with(&mut buf, |out| rec.encode(out));
                entries.push((offset, rec));
            }
        }
        // Start a new segment when this batch would take the current one past its size.
        let mut rotated = None;
        if end > 0 && end + buf.len() as u64 > config.segment_bytes {
            match new_segment(&shared.dir, offset - count as u64 + 1) {
                Ok((writer, segment)) => {
                    // What the segment being left holds unsynced is synced with it: later syncs
                    // reach only the new file.
                    if config.fsync
                        && unsynced
                        && let Err(e) = sync_file(&shared, &file)
                    {
                        tracing::error!(dir = %shared.dir.display(), error = %e, "syncing a finished journal segment failed");
                        shared.state.lock().failed =
                            Some(format!("syncing a finished journal segment failed: {e}"));
                    }
                    unsynced = false;
                    file = writer;
                    allocated = 0;
                    for p in &mut positions {
                        *p -= end;
                    }
                    end = 0;
                    rotated = Some(segment);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a new journal segment; going on in the current one")
                }
            }
        }
        let started = Instant::now();
        let sync = config.fsync && (config.sync_each_batch || reqs.iter().any(|r| r.sync));
        let needed = end + buf.len() as u64;
        let grow = if needed > allocated {
            let to = needed.max((end + config.preallocate_bytes).min(config.segment_bytes));
            let grown = preallocate(&file, allocated.max(needed), to);
            allocated = to;
            grown
        } else {
            Ok(())
        };
        let written = grow
            .and_then(|()| file.write_all_at(&buf, end))
            .and_then(|()| {
                unsynced |= !buf.is_empty();
                if sync && unsynced {
                    unsynced = false;
                    sync_file(&shared, &file)
                } else {
                    Ok(())
                }
            });
        commit_seconds.record(started.elapsed().as_secs_f64());
        batch_records.record(count as f64);
        if let Err(e) = written {
            // The file may now hold part of this batch; nothing of it was acknowledged. Refuse
            // further writes: a restart rescans the file and cuts the partial tail.
            let why = format!(
                "write to the journal in {} failed: {e}",
                shared.dir.display()
            );
            tracing::error!("{why}");
            shared.state.lock().failed = Some(why.clone());
            for r in reqs {
                let _ = r.reply.send(Err(LogError::Failed(why.clone())));
            }
            continue;
        }
        let evicted = {
            let mut st = shared.state.lock();
            if let Some(segment) = rotated {
                st.segments.push_back(segment);
            }
            st.last = offset;
            st.segments.back_mut().expect("at least one segment").len = end + buf.len() as u64;
            st.positions.extend(positions);
            st.tail.extend(entries);
            let over = st.tail.len().saturating_sub(config.memory_records);
            st.tail.drain(..over).collect::<Vec<_>>()
        };
        // Freed outside the lock: readers wait on it.
        drop(evicted);
        shared.notify.notify_waiters();
        for (req, first) in reqs.into_iter().zip(firsts) {
            let _ = req.reply.send(Ok(first));
        }
    }
    // Closed: what was written without a sync is made durable now.
    if config.fsync
        && unsynced
        && let Err(e) = sync_file(&shared, &file)
    {
        tracing::error!(dir = %shared.dir.display(), error = %e, "syncing the journal on close failed");
    }
}

/// The writer's next request, waiting to be woken for it or, with `poll_every`, looking for one
/// that often until `IDLE_POLLS` looks in a row found none. `None` once every sender is gone.
fn next_request<R>(
    receiver: &mpsc::Receiver<WriteReq<R>>,
    poll_every: Option<Duration>,
    idle: &mut u32,
) -> Option<WriteReq<R>> {
    if let Some(every) = poll_every {
        while *idle < IDLE_POLLS {
            match receiver.try_recv() {
                Ok(req) => {
                    *idle = 0;
                    return Some(req);
                }
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => {
                    *idle += 1;
                    std::thread::sleep(every);
                }
            }
        }
    }
    let req = receiver.recv().ok();
    *idle = 0;
    req
}

impl<R: Record> Journal<R> {
    /// Appends durably, assigning consecutive offsets; returns the records as stored.
    pub async fn append(&self, records: Vec<R>) -> Result<Vec<(u64, R)>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // The journal keeps the records it is given; the caller gets them back from a copy,
        // stamped as the writer stamped them.
        let stored = records.clone();
        let first = self
            .submit(records)?
            .await
            .map_err(|_| LogError::Closed)??;
        Ok((first..)
            .zip(stored)
            .map(|(offset, mut rec)| {
                rec.stamp(offset);
                (offset, rec)
            })
            .collect())
    }

    /// Queues an append without waiting for it: appends are written in the order they are
    /// submitted; the receiver answers once this one is durable.
    pub fn submit(&self, records: Vec<R>) -> Result<Appended, LogError> {
        self.request(records, false)
    }

    /// Makes every append submitted before it durable (when the journal syncs at all); answers
    /// once it is. A journal that syncs each batch is durable at every answer already.
    pub async fn sync(&self) -> Result<(), LogError> {
        self.request(Vec::new(), true)?
            .await
            .map_err(|_| LogError::Closed)?
            .map(drop)
    }

    fn request(&self, records: Vec<R>, sync: bool) -> Result<Appended, LogError> {
        let (reply, response) = oneshot::channel();
        let sender = self.sender.lock();
        let sender = sender.as_ref().ok_or(LogError::Closed)?;
        sender
            .send(WriteReq {
                records,
                sync,
                reply,
            })
            .map_err(|_| LogError::Closed)?;
        Ok(response)
    }

    /// Up to `max` records with offsets above `after`, in order; waits for one until closed.
    pub async fn read(&self, after: u64, max: usize) -> Result<Vec<(u64, R)>, LogError> {
        let max = max.max(1);
        loop {
            let notified = self.shared.notify.notified();
            let tail_base = {
                let st = self.shared.state.lock();
                if after < st.last {
                    let tail_base = st.tail_base();
                    if after + 1 >= tail_base {
                        let start = (after + 1 - tail_base) as usize;
                        return Ok(st.tail.range(start..).take(max).cloned().collect());
                    }
                    Some(tail_base)
                } else if st.closed {
                    return Ok(Vec::new());
                } else {
                    None
                }
            };
            match tail_base {
                Some(tail_base) => return self.read_file(after, max, tail_base),
                None => notified.await,
            }
        }
    }

    /// Lets go of everything up to `offset`: whole segments it covers are deleted.
    pub fn ack(&self, offset: u64) {
        let mut st = self.shared.state.lock();
        let offset = offset.min(st.last);
        while st.tail.front().is_some_and(|e| e.0 <= offset) {
            st.tail.pop_front();
        }
        while st.positions_base <= offset && !st.positions.is_empty() {
            st.positions.pop_front();
            st.positions_base += 1;
        }
        // Segments whose every record is covered go; the one being written always stays.
        let mut gone = Vec::new();
        while st.segments.len() > 1 && st.segments[1].first <= offset + 1 {
            gone.extend(st.segments.pop_front().map(|s| s.path));
        }
        drop(st);
        for path in gone {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not delete an acknowledged journal segment");
            }
        }
    }

    /// The offset of the last record appended (0 when empty).
    pub fn last_offset(&self) -> u64 {
        self.shared.state.lock().last
    }

    /// Stops taking appends (after writing what was queued) and wakes readers.
    pub fn close(&self) {
        self.sender.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            // The writer commits what was queued, then stops (its senders are gone).
            let _ = writer.join();
        }
        self.shared.state.lock().closed = true;
        self.shared.notify.notify_waiters();
    }
}

#[async_trait]
impl CommandLog for Journal<LogRecord> {
    async fn append(&self, records: Vec<LogRecord>) -> Result<Vec<Entry>, LogError> {
        Journal::append(self, records).await
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<Entry>, LogError> {
        Journal::read(self, after, max).await
    }

    async fn ack(&self, offset: u64) -> Result<(), LogError> {
        Journal::ack(self, offset);
        Ok(())
    }

    fn last_offset(&self) -> u64 {
        Journal::last_offset(self)
    }

    fn close(&self) {
        Journal::close(self)
    }
}

impl<R: Record> Drop for Journal<R> {
    fn drop(&mut self) {
        self.close();
    }
}
