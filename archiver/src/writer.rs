//! The archive writer: flows in, hive-partitioned zstd Parquet files out.
//!
//! One file is open at a time, for the partition (`dt=YYYY-MM-DD/hour=HH`)
//! of the flows arriving; a flow of another partition closes it. A file is
//! closed when it reaches `file_rows` rows, about `file_bytes` bytes or
//! `file_age` of age, and on [`ArchiveWriter::finish`]. Closing writes the
//! whole file atomically through [`Storage::put`], then advances the resume
//! state (`_archive/state.json`): the newest flow time committed and the
//! uuids at that time. Nothing in an open file is visible or counted as
//! archived, so a crash loses only the open file, and the restart fetches
//! those flows again from the source (if it still holds them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use proto::flow::Flow;
use proto::wkt::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::compression::FileCompression;
use crate::defaults;
use crate::encoded::FlowScan;
use crate::schema::{self, BatchBuilder};
use crate::storage::{Storage, StorageError};

/// Where the resume state is cached. The authority is each file's footer
/// (keys below), written in the same atomic rename as the rows, so a crash
/// between a file and this cache cannot cause duplicates.
pub const STATE_PATH: &str = "_archive/state.json";
/// Footer key: the newest flow time in the file (RFC 3339).
pub const MAX_TIME_KEY: &str = "flow_archive.max_time";
/// Footer key: JSON array of the uuids at that time.
pub const MAX_UUIDS_KEY: &str = "flow_archive.max_uuids";
/// Where recorded gaps live (one JSON object per line).
pub const GAPS_PATH: &str = "_archive/gaps.jsonl";

/// Sizes that shape the files.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows after which a file is closed.
    pub file_rows: u64,
    /// Approximate compressed bytes after which a file is closed.
    pub file_bytes: u64,
    /// Age after which an open file is closed, so data becomes visible.
    pub file_age: Duration,
    /// Compression of the files' pages.
    pub compression: FileCompression,
    /// Encode and compress each file's pages on a thread of its own, so
    /// the appending thread only builds columns (about half the work each;
    /// the file's bytes are the same).
    pub encoder_thread: bool,
    /// Decode every encoded flow with prost before archiving it
    /// ([`ArchiveWriter::append_encoded`]), so a flow malformed inside a
    /// part no column reads is refused instead of archived.
    pub verify_flows: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_rows: defaults::ROW_GROUP_ROWS,
            file_rows: defaults::FILE_ROWS,
            file_bytes: defaults::FILE_BYTES,
            file_age: defaults::FILE_AGE,
            compression: defaults::COMPRESSION,
            verify_flows: defaults::VERIFY_FLOWS,
            encoder_thread: true,
        }
    }
}

/// Errors of the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Parquet encoding failed.
    #[error("writing Parquet for {path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An encoded flow is not a valid `flow.Flow`.
    #[error(transparent)]
    Flow(#[from] crate::encoded::Scan),
    /// The state file is corrupt.
    #[error("archive state {STATE_PATH} is unreadable: {0}")]
    State(String),
}

/// What the archive has committed, for resuming without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveState {
    /// Newest flow time in a committed file.
    pub last_time: Option<Timestamp>,
    /// Uuids of the committed flows at exactly `last_time`.
    pub last_uuids: Vec<String>,
    /// Rows committed over the archive's life.
    pub rows: u64,
    /// Files committed over the archive's life.
    pub files: u64,
    /// Data files whose footer cannot be read (truncated, empty, not
    /// Parquet), found by [`ArchiveState::load`]; not saved.
    #[serde(skip)]
    pub unreadable: Vec<String>,
}

impl ArchiveState {
    /// Loads the state: the cached `state.json`, corrected by the footers of
    /// the committed files (the authority: a file committed just before a
    /// crash may be newer than the cache).
    pub fn load(storage: &dyn Storage) -> Result<ArchiveState, WriteError> {
        let mut st = match storage.get(STATE_PATH)? {
            None => ArchiveState::default(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| WriteError::State(e.to_string()))?,
        };
        let (mut rows, mut files) = (0u64, 0u64);
        for path in storage
            .list("")?
            .into_iter()
            .filter(|p| p.ends_with(".parquet"))
        {
            let Some(footer) = read_footer(storage, &path)? else {
                tracing::warn!(file = %path, "unreadable archive file skipped while loading state");
                st.unreadable.push(path);
                continue;
            };
            let md = footer.file_metadata();
            rows += md.num_rows() as u64;
            files += 1;
            let kv = md.key_value_metadata();
            let get = |k: &str| {
                kv.and_then(|kv| kv.iter().find(|e| e.key == k))
                    .and_then(|e| e.value.clone())
            };
            let max = get(MAX_TIME_KEY).and_then(|t| Timestamp::parse_rfc3339(&t).ok());
            let uuids: Vec<String> = get(MAX_UUIDS_KEY)
                .and_then(|u| serde_json::from_str(&u).ok())
                .unwrap_or_default();
            match (st.last_time, max) {
                (Some(l), Some(m)) if m < l => {}
                (Some(l), Some(m)) if m == l => {
                    for u in uuids {
                        if !st.last_uuids.contains(&u) {
                            st.last_uuids.push(u);
                        }
                    }
                }
                (_, Some(m)) => {
                    st.last_time = Some(m);
                    st.last_uuids = uuids;
                }
                (_, None) => {}
            }
        }
        st.rows = st.rows.max(rows);
        st.files = st.files.max(files);
        Ok(st)
    }

    /// Whether a flow was already committed (older than the watermark, or at
    /// it with a known uuid).
    pub fn already_archived(&self, f: &Flow) -> bool {
        match (self.last_time, f.time) {
            (Some(last), Some(t)) => t < last || (t == last && self.last_uuids.contains(&f.uuid)),
            _ => false,
        }
    }
}

/// Bytes fetched from a file's end to find its footer in one request.
const FOOTER_GUESS: u64 = 64 * 1024;

/// A Parquet file's metadata, read from its end only (one or two ranged
/// reads on an object store, not the whole file). `Ok(None)` when the file
/// is gone or is not Parquet.
pub fn read_footer(
    storage: &dyn Storage,
    path: &str,
) -> Result<Option<parquet::file::metadata::ParquetMetaData>, StorageError> {
    let Some(mut tail) = storage.get_tail(path, FOOTER_GUESS)? else {
        return Ok(None);
    };
    let parse_len = |t: &[u8]| -> Option<u64> {
        let n = t.len();
        if n < 12 || &t[n - 4..] != b"PAR1" {
            return None;
        }
        let len = u32::from_le_bytes(t[n - 8..n - 4].try_into().ok()?);
        Some(u64::from(len) + 8)
    };
    let Some(need) = parse_len(&tail) else {
        return Ok(None);
    };
    if need > tail.len() as u64 {
        let Some(t) = storage.get_tail(path, need)? else {
            return Ok(None);
        };
        tail = t;
        if (tail.len() as u64) < need {
            return Ok(None);
        }
    }
    let n = tail.len();
    let start = n - need as usize;
    Ok(parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&tail[start..n - 8]).ok())
}

/// The Parquet settings of every archive file (the writer's and
/// compaction's), before their key-value metadata.
///
/// Columns whose values are (nearly) unique per row are written without a
/// dictionary and without min/max statistics: `flow_pb` and `uuid` (a
/// dictionary of them only fills up and falls back to plain, and no query
/// prunes on them; computing their statistics compared every ~870-byte
/// `flow_pb`), and `time`, delta-encoded (rising within a file: about a
/// byte a row before compression); `time` keeps its statistics, which
/// prune row groups and pages. Every other column keeps dictionary
/// encoding. Readers need nothing new: these are standard Parquet
/// encodings (DuckDB, pyarrow and polars read them).
pub fn file_properties(
    compression: FileCompression,
    row_group_rows: usize,
) -> parquet::file::properties::WriterPropertiesBuilder {
    use parquet::basic::Encoding;
    use parquet::file::properties::EnabledStatistics;
    use parquet::schema::types::ColumnPath;
    let mut b = WriterProperties::builder()
        .set_compression(compression.parquet())
        .set_max_row_group_row_count(Some(row_group_rows));
    for unique in ["flow_pb", "uuid"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(unique), false);
    }
    // Statistics only where they can prune: `time` (our reader's row
    // groups and pages), `verdict` and the numbers (cheap). Strings and
    // lists of strings are mixed in every row group of a time-ordered
    // archive, and their min/max compared every value on write.
    for field in schema::schema().fields() {
        let path = match field.data_type() {
            arrow_schema::DataType::Utf8 | arrow_schema::DataType::Binary
                if field.name() != "verdict" =>
            {
                ColumnPath::from(field.name().as_str())
            }
            arrow_schema::DataType::List(item) => ColumnPath::new(vec![
                field.name().clone(),
                "list".to_owned(),
                item.name().clone(),
            ]),
            _ => continue,
        };
        b = b.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    b.set_column_dictionary_enabled(ColumnPath::from("time"), false)
        .set_column_encoding(ColumnPath::from("time"), Encoding::DELTA_BINARY_PACKED)
}

/// A recorded gap: flows that were never archived, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// When the gap was noticed.
    pub recorded_at: Timestamp,
    /// Start of the missing window (the archive's watermark), if known.
    pub from: Option<Timestamp>,
    /// End of the missing window (the oldest flow the source still holds).
    pub to: Option<Timestamp>,
    /// Events the source reported lost, if it said.
    pub lost_events: Option<u64>,
    /// Why.
    pub reason: String,
}

/// Appends a gap to `_archive/gaps.jsonl`.
pub fn record_gap(storage: &dyn Storage, gap: &Gap) -> Result<(), StorageError> {
    let mut data = storage.get(GAPS_PATH)?.unwrap_or_default();
    if let Ok(line) = serde_json::to_string(gap) {
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
    }
    storage.put(GAPS_PATH, &data)
}

/// Fails unless the archive can be written: a file is put and deleted
/// (under `_archive/`), so a read-only directory or bucket is refused at
/// start rather than at the first commit.
pub fn check_writable(storage: &dyn Storage) -> Result<(), StorageError> {
    const PROBE: &str = "_archive/write-probe";
    let res = storage.put(PROBE, b"").and_then(|()| storage.delete(PROBE));
    res.map_err(|e| StorageError::Location {
        location: storage.describe(),
        message: format!("cannot write to the archive ({e}); --dir must be writable"),
    })
}

/// Moves every unreadable data file aside (`<file>.corrupt`, which no query
/// reads) and records the hour it covered as a gap: run by the archiver at
/// start, so a file truncated by a crash or a full disk does not stay in the
/// archive. The watermark then comes from the readable files, so flows the
/// source still holds are fetched again. Returns the gaps recorded.
pub fn quarantine_unreadable(storage: &dyn Storage) -> Result<Vec<Gap>, WriteError> {
    quarantine(storage, &ArchiveState::load(storage)?.unreadable)
}

/// [`quarantine_unreadable`] for the files a loaded [`ArchiveState`] found
/// unreadable (the archiver's start: the writer has just read every footer;
/// an unreadable file counts for nothing in its state, so moving it aside
/// afterwards changes no watermark).
pub fn quarantine(storage: &dyn Storage, unreadable: &[String]) -> Result<Vec<Gap>, WriteError> {
    let mut out = Vec::new();
    for path in unreadable {
        let aside = format!("{path}.corrupt");
        let data = storage.get(path)?.unwrap_or_default();
        storage.put(&aside, &data)?;
        storage.delete(path)?;
        let window = crate::read::hour_range(path);
        let gap = Gap {
            recorded_at: Timestamp::now(),
            from: window.map(|w| w.0),
            to: window.map(|w| w.1),
            lost_events: None,
            reason: format!(
                "unreadable archive file {path} moved aside to {aside}: its flows are lost unless the source still holds them"
            ),
        };
        tracing::warn!(file = %path, aside = %aside, "unreadable archive file moved aside; gap recorded");
        record_gap(storage, &gap)?;
        out.push(gap);
    }
    Ok(out)
}

/// Reads every recorded gap.
pub fn gaps(storage: &dyn Storage) -> Result<Vec<Gap>, StorageError> {
    let data = storage.get(GAPS_PATH)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&data)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The `dt=YYYY-MM-DD/hour=HH` partition of a time.
pub fn partition_of(t: Option<Timestamp>) -> String {
    let dt = t.and_then(|t| t.to_datetime()).unwrap_or_default();
    dt.format("dt=%Y-%m-%d/hour=%H").to_string()
}

struct OpenFile {
    partition: String,
    /// The hour (seconds / 3600) of the last flow appended, whose
    /// partition is `partition`.
    hour: Option<i64>,
    path: String,
    writer: FileEncoder,
    builder: BatchBuilder,
    rows: u64,
    opened: Instant,
    max_time: Option<Timestamp>,
    uuids_at_max: Vec<String>,
}

/// What a file's batches become Parquet with: the writer itself, or a
/// thread that owns it (batches handed over through a channel of two, so
/// at most two batches wait and a slow encoder slows the appender).
enum FileEncoder {
    /// Encoded on the appending thread.
    Inline(Box<ArrowWriter<Vec<u8>>>),
    /// Encoded on its own thread.
    Thread {
        tx: std::sync::mpsc::SyncSender<Encode>,
        handle: std::thread::JoinHandle<EncodeResult>,
        /// Bytes written plus the open row group's estimate, after the
        /// last batch the thread encoded.
        size: Arc<std::sync::atomic::AtomicU64>,
    },
}

enum Encode {
    Batch(RecordBatch),
    Finish(Vec<KeyValue>),
}

/// The file's bytes and the thread's CPU time.
type EncodeResult = Result<(Vec<u8>, Duration), parquet::errors::ParquetError>;

impl FileEncoder {
    fn threaded(
        mut writer: ArrowWriter<Vec<u8>>,
    ) -> Result<FileEncoder, parquet::errors::ParquetError> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Encode>(2);
        let size = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = size.clone();
        let handle = std::thread::Builder::new()
            .name("archive-encode".into())
            .spawn(move || {
                for cmd in rx {
                    match cmd {
                        Encode::Batch(b) => {
                            writer.write(&b)?;
                            seen.store(
                                (writer.bytes_written() + writer.in_progress_size()) as u64,
                                Ordering::Relaxed,
                            );
                        }
                        Encode::Finish(footer) => {
                            for kv in footer {
                                writer.append_key_value_metadata(kv);
                            }
                            let bytes = writer.into_inner()?;
                            return Ok((bytes, thread_cpu()));
                        }
                    }
                }
                Err(parquet::errors::ParquetError::General(
                    "archive file abandoned".into(),
                ))
            });
        match handle {
            Ok(handle) => Ok(FileEncoder::Thread { tx, handle, size }),
            Err(e) => Err(parquet::errors::ParquetError::General(format!(
                "starting the encoder thread: {e}"
            ))),
        }
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), parquet::errors::ParquetError> {
        match self {
            FileEncoder::Inline(w) => w.write(&batch),
            FileEncoder::Thread { tx, .. } => tx.send(Encode::Batch(batch)).map_err(|_| {
                parquet::errors::ParquetError::General("the encoder thread stopped".into())
            }),
        }
    }

    fn size(&self) -> u64 {
        match self {
            FileEncoder::Inline(w) => (w.bytes_written() + w.in_progress_size()) as u64,
            FileEncoder::Thread { size, .. } => size.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn finish(self, footer: Vec<KeyValue>) -> EncodeResult {
        match self {
            FileEncoder::Inline(mut w) => {
                for kv in footer {
                    w.append_key_value_metadata(kv);
                }
                Ok((w.into_inner()?, Duration::ZERO))
            }
            FileEncoder::Thread { tx, handle, .. } => {
                // A failed send means the thread ended with an error,
                // which the join returns.
                let _ = tx.send(Encode::Finish(footer));
                drop(tx);
                handle.join().unwrap_or_else(|_| {
                    Err(parquet::errors::ParquetError::General(
                        "the encoder thread panicked".into(),
                    ))
                })
            }
        }
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl OpenFile {
    /// Counts a row appended at `time` and keeps the uuids at the newest
    /// time (the footer's resume point), reusing the one string of the
    /// common case (each flow newer than the last).
    fn note(&mut self, time: Option<Timestamp>, uuid: &str) {
        self.rows += 1;
        match (self.max_time, time) {
            (Some(m), Some(t)) if t < m => {}
            (Some(m), Some(t)) if t == m => self.uuids_at_max.push(uuid.to_owned()),
            (_, t) => {
                self.max_time = t;
                self.uuids_at_max.truncate(1);
                match self.uuids_at_max.first_mut() {
                    Some(u) => {
                        u.clear();
                        u.push_str(uuid);
                    }
                    None => self.uuids_at_max.push(uuid.to_owned()),
                }
            }
        }
    }
}

/// Figures of the writer, for metrics and the final report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Rows committed by this process.
    pub rows: u64,
    /// Files committed by this process.
    pub files: u64,
    /// Bytes committed by this process.
    pub bytes: u64,
    /// Rows in the open file (not yet committed).
    pub pending_rows: u64,
    /// CPU time of the encoder threads of the committed files
    /// ([`WriterOptions::encoder_thread`]).
    pub encoder_cpu: Duration,
}

/// Writes flows into the archive.
pub struct ArchiveWriter {
    storage: Arc<dyn Storage>,
    opts: WriterOptions,
    props: WriterProperties,
    open: Option<OpenFile>,
    state: ArchiveState,
    stats: WriterStats,
    seq: u64,
    /// The scan of the last encoded flow (buffers reused; boxed, so taking
    /// it out for a row moves a pointer, not the whole scan).
    scan: Option<Box<FlowScan>>,
    /// The builder of the last committed file, kept with its buffers'
    /// capacities for the next file.
    spare: Option<BatchBuilder>,
}

/// What [`ArchiveWriter::append_encoded_unless`] did with a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// Appended; the flow's time.
    Appended(Option<Timestamp>),
    /// Left out, as the caller asked.
    Skipped,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("storage", &self.storage.describe())
            .field("stats", &self.stats)
            .finish()
    }
}

impl ArchiveWriter {
    /// A writer continuing the archive in `storage`.
    pub fn new(storage: Arc<dyn Storage>, opts: WriterOptions) -> Result<Self, WriteError> {
        let state = ArchiveState::load(storage.as_ref())?;
        let props = file_properties(opts.compression, opts.row_group_rows)
            .set_key_value_metadata(Some(vec![
                KeyValue::new(
                    schema::SCHEMA_VERSION_KEY.to_owned(),
                    schema::SCHEMA_VERSION.to_owned(),
                ),
                KeyValue::new(
                    "flow_archive.writer".to_owned(),
                    format!("flow-archiver {}", env!("CARGO_PKG_VERSION")),
                ),
            ]))
            .build();
        Ok(ArchiveWriter {
            storage,
            opts,
            props,
            open: None,
            state,
            stats: WriterStats::default(),
            seq: 0,
            scan: Some(Box::default()),
            spare: None,
        })
    }

    /// The committed state.
    pub fn state(&self) -> &ArchiveState {
        &self.state
    }

    /// This process's figures.
    pub fn stats(&self) -> WriterStats {
        let mut s = self.stats.clone();
        s.pending_rows = self.open.as_ref().map(|o| o.rows).unwrap_or(0);
        s
    }

    /// Appends a flow (deduplication on resume is the caller's: see
    /// [`ArchiveState::already_archived`]). Returns whether it was appended.
    pub fn append(&mut self, f: &Flow) -> Result<bool, WriteError> {
        let o = self.file_for(f.time)?;
        o.builder.push(f);
        o.note(f.time, &f.uuid);
        self.after_row()?;
        Ok(true)
    }

    /// Appends a flow from its protobuf encoding (`flow.Flow`, e.g. the
    /// flow of a `GetFlowsResponse` as it arrived): the columns are read
    /// from the bytes ([`crate::encoded`]) and the bytes are the row's
    /// `flow_pb`, so the flow is neither decoded nor encoded again.
    pub fn append_encoded(&mut self, flow_pb: &[u8]) -> Result<bool, WriteError> {
        self.append_encoded_unless(flow_pb, |_, _| false)
            .map(|e| e != Encoded::Skipped)
    }

    /// [`ArchiveWriter::append_encoded`], unless `skip(time, uuid)` of the
    /// flow says otherwise (the follower's resume check). Bytes that are
    /// not a valid flow are an error ([`WriteError::Flow`]) and append
    /// nothing.
    pub fn append_encoded_unless(
        &mut self,
        flow_pb: &[u8],
        skip: impl FnOnce(Option<Timestamp>, &str) -> bool,
    ) -> Result<Encoded, WriteError> {
        let mut scan = self.scan.take().unwrap_or_default();
        let res = self.append_scan(&mut scan, flow_pb, skip);
        self.scan = Some(scan);
        res
    }

    fn append_scan(
        &mut self,
        scan: &mut FlowScan,
        flow_pb: &[u8],
        skip: impl FnOnce(Option<Timestamp>, &str) -> bool,
    ) -> Result<Encoded, WriteError> {
        let scanned = match scan.scan(flow_pb) {
            Ok(s) => s,
            Err(crate::encoded::Scan::Irregular(_)) => {
                // Legal protobuf the scan leaves to prost: decode it, and
                // keep the bytes as they came.
                let f = crate::encoded::decode(flow_pb)?;
                if skip(f.time, &f.uuid) {
                    return Ok(Encoded::Skipped);
                }
                let o = self.file_for(f.time)?;
                o.builder.push_decoded(&f, flow_pb);
                o.note(f.time, &f.uuid);
                self.after_row()?;
                return Ok(Encoded::Appended(f.time));
            }
            Err(e) => return Err(e.into()),
        };
        let time = scanned.time();
        if skip(time, scanned.uuid()) {
            return Ok(Encoded::Skipped);
        }
        if self.opts.verify_flows {
            crate::encoded::decode(flow_pb)?;
        }
        let o = self.file_for(time)?;
        o.builder.push_scanned(&scanned);
        o.note(time, scanned.uuid());
        self.after_row()?;
        Ok(Encoded::Appended(time))
    }

    /// The open file for a flow at `time`, after closing the open one if
    /// the flow belongs to another partition.
    fn file_for(&mut self, time: Option<Timestamp>) -> Result<&mut OpenFile, WriteError> {
        // The partition is formatted only when the flow's hour is not the
        // open file's (once an hour, not once a row).
        let hour = time.map(|t| t.seconds.div_euclid(3600));
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.hour != hour || hour.is_none())
        {
            let partition = partition_of(time);
            if self.open.as_ref().is_some_and(|o| o.partition != partition) {
                self.close()?;
            } else if let Some(o) = self.open.as_mut() {
                o.hour = hour;
            }
        }
        if self.open.is_none() {
            let mut o = self.open_file(partition_of(time), time)?;
            o.hour = hour;
            self.open = Some(o);
        }
        // Just opened if it was not.
        Ok(self.open.as_mut().expect("an open file"))
    }

    /// After a row: writes a full batch, closes a full file.
    fn after_row(&mut self) -> Result<(), WriteError> {
        let Some(o) = self.open.as_mut() else {
            return Ok(());
        };
        let mut wrote = false;
        if o.builder.len() >= defaults::BATCH_ROWS {
            let batch = o.builder.finish();
            if let Err(source) = o.writer.write(batch) {
                let path = o.path.clone();
                self.open = None;
                return Err(WriteError::Parquet { path, source });
            }
            wrote = true;
        }
        // The encoded size changes only when a batch is handed over (or,
        // on the encoder thread, while one is encoded): asking an inline
        // writer every row summed its 43 columns' estimates per row.
        let full = o.rows >= self.opts.file_rows
            || ((wrote || matches!(o.writer, FileEncoder::Thread { .. }))
                && o.writer.size() >= self.opts.file_bytes);
        if full {
            self.close()?;
        }
        Ok(())
    }

    /// Closes the open file if it is older than `file_age`.
    pub fn tick(&mut self) -> Result<(), WriteError> {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.opened.elapsed() >= self.opts.file_age)
        {
            self.close()?;
        }
        Ok(())
    }

    /// Commits the open file, if any.
    pub fn close(&mut self) -> Result<(), WriteError> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        let err = |source| WriteError::Parquet {
            path: o.path.clone(),
            source,
        };
        if !o.builder.is_empty() {
            let batch = o.builder.finish();
            o.writer.write(batch).map_err(err)?;
        }
        // The resume point goes into the file's own footer, committed in
        // the same atomic put as its rows: a crash between this file and
        // `state.json` cannot make the restart archive these rows again.
        let mut footer = Vec::new();
        if let Some(m) = o.max_time {
            footer.push(KeyValue::new(MAX_TIME_KEY.to_owned(), m.to_rfc3339()));
            footer.push(KeyValue::new(
                MAX_UUIDS_KEY.to_owned(),
                serde_json::to_string(&o.uuids_at_max).unwrap_or_default(),
            ));
        }
        let (bytes, cpu) = o.writer.finish(footer).map_err(err)?;
        self.spare = Some(o.builder);
        self.stats.encoder_cpu += cpu;
        self.storage.put(&o.path, &bytes)?;
        self.stats.rows += o.rows;
        self.stats.files += 1;
        self.stats.bytes += bytes.len() as u64;
        let st = &mut self.state;
        st.rows += o.rows;
        st.files += 1;
        match (st.last_time, o.max_time) {
            (Some(l), Some(m)) if m < l => {}
            (Some(l), Some(m)) if m == l => st.last_uuids.extend(o.uuids_at_max),
            (_, m) => {
                st.last_time = m;
                st.last_uuids = o.uuids_at_max;
            }
        }
        let json = serde_json::to_vec_pretty(&self.state).unwrap_or_default();
        self.storage.put(STATE_PATH, &json)?;
        tracing::debug!(file = %o.path, rows = o.rows, bytes = bytes.len(), "committed archive file");
        Ok(())
    }

    /// Commits everything; call before exiting.
    pub fn finish(mut self) -> Result<WriterStats, WriteError> {
        self.close()?;
        Ok(self.stats)
    }

    fn open_file(
        &mut self,
        partition: String,
        first: Option<Timestamp>,
    ) -> Result<OpenFile, WriteError> {
        self.seq += 1;
        let first_ns = first.map(|t| t.as_unix_nanos()).unwrap_or(0).max(0);
        let path = format!(
            "{partition}/part-{first_ns:020}-{}-{:04}.parquet",
            std::process::id(),
            self.seq
        );
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(defaults::FILE_BUFFER_CAPACITY),
            schema::schema(),
            Some(self.props.clone()),
        )
        .map_err(|source| WriteError::Parquet {
            path: path.clone(),
            source,
        })?;
        let writer = if self.opts.encoder_thread {
            FileEncoder::threaded(writer).map_err(|source| WriteError::Parquet {
                path: path.clone(),
                source,
            })?
        } else {
            FileEncoder::Inline(Box::new(writer))
        };
        Ok(OpenFile {
            partition,
            hour: None,
            path,
            writer,
            builder: self.spare.take().unwrap_or_default(),
            rows: 0,
            opened: Instant::now(),
            max_time: None,
            uuids_at_max: Vec::new(),
        })
    }
}
