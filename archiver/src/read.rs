//! Reading the archive back with the same filters as live queries.
//!
//! Work is cut at four levels: day partitions outside `since`/`until` are
//! not even listed (one prefix listing per day kept, which matters on an
//! object store); hour partitions outside the window are not read (the hour
//! is in the path); row groups whose `time` statistics lie outside the
//! window are skipped; and when every allow filter names verdicts, the
//! `verdict` column is checked before a row's `flow_pb` is decoded. The
//! remaining rows are decoded and matched with [`flow_filter::FilterSet`],
//! so results are exactly what a live server would select.
//!
//! Files are read whole through [`Storage::get`] (they are bounded by the
//! writer's `file_bytes`), then pruned by row group in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::{Array, BinaryArray, StringArray, TimestampNanosecondArray};
use chrono::{NaiveDate, TimeZone, Utc};
use flow_filter::FilterSet;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use prost::Message;
use proto::flow::{Flow, FlowFilter, Verdict};
use proto::wkt::Timestamp;

pub use crate::history::Render;
use crate::storage::{Storage, StorageError};

/// Errors while reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The flows read could not be rendered ([`Render`]).
    #[error("formatting the output: {0}")]
    Output(std::io::Error),
    /// A file is not a readable archive file.
    #[error("reading {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// What to select.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Oldest flow time (inclusive).
    pub since: Option<Timestamp>,
    /// Newest flow time (inclusive).
    pub until: Option<Timestamp>,
    /// Allow filters (empty = all).
    pub whitelist: Vec<FlowFilter>,
    /// Deny filters.
    pub blacklist: Vec<FlowFilter>,
    /// At most this many flows: the newest ones, or the oldest with `first`.
    pub number: Option<u64>,
    /// Take the oldest `number` flows instead of the newest.
    pub first: bool,
}

impl From<&proto::observer::GetFlowsRequest> for Query {
    /// The history query a GetFlows request asks for (`hubble observe
    /// --archive`, `hubble tui --archive`): the same time range, filters
    /// and count (`0` and `--all`'s `u64::MAX` mean no limit).
    fn from(req: &proto::observer::GetFlowsRequest) -> Self {
        Query {
            since: req.since,
            until: req.until,
            whitelist: req.whitelist.clone(),
            blacklist: req.blacklist.clone(),
            number: (req.number != 0 && req.number != u64::MAX).then_some(req.number),
            first: req.first,
        }
    }
}

/// Counters of one query, to show the pruning at work. `files_total`
/// counts the files listed: those of the day partitions not skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Files in the archive.
    pub files_total: u64,
    /// Files opened after partition pruning.
    pub files_read: u64,
    /// Row groups skipped by their time statistics.
    pub row_groups_skipped: u64,
    /// Rows skipped by the verdict column before decoding.
    pub rows_prefiltered: u64,
    /// Rows decoded and matched.
    pub rows_decoded: u64,
    /// Day partitions (`dt=`) outside `since`/`until`, not even listed.
    pub days_skipped: u64,
    /// Files skipped as unreadable (corrupt, truncated, empty, not an
    /// archive file): `path: reason`. Their flows are missing from the result.
    pub unreadable: Vec<String>,
    /// Warnings of the listing (symbolic links skipped), to show the user.
    pub warnings: Vec<String>,
}

/// An archive opened for reading.
#[derive(Debug, Clone)]
pub struct Archive {
    storage: Arc<dyn Storage>,
}

/// The hour a partition path (`dt=…/hour=HH/…`) covers.
pub(crate) fn hour_range(path: &str) -> Option<(Timestamp, Timestamp)> {
    let mut dt = None;
    let mut hour = None;
    for part in path.split('/') {
        if let Some(d) = part.strip_prefix("dt=") {
            dt = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        } else if let Some(h) = part.strip_prefix("hour=") {
            hour = h.parse::<u32>().ok();
        }
    }
    let start = Utc.from_utc_datetime(&dt?.and_hms_opt(hour?, 0, 0)?);
    let s = Timestamp {
        seconds: start.timestamp(),
        nanos: 0,
    };
    let e = Timestamp {
        seconds: start.timestamp() + 3600,
        nanos: 0,
    };
    Some((s, e))
}

impl Archive {
    /// Opens the archive in `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Archive { storage }
    }

    /// Opens the existing archive at `location`: a directory, or
    /// `s3://bucket/prefix` with its settings from the environment
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...; see
    /// [`crate::storage::S3Options`]). Nothing is created.
    pub fn open(location: &str) -> Result<Self, ReadError> {
        let s3 = crate::storage::S3Options::default();
        Ok(Archive::new(crate::location::open_existing(location, &s3)?))
    }

    /// The archive's data files, in partition and time order.
    pub fn files(&self) -> Result<Vec<String>, ReadError> {
        Ok(self
            .storage
            .list("")?
            .into_iter()
            .filter(|p| p.ends_with(".parquet"))
            .collect())
    }

    /// [`Archive::candidate_files`], with a query's statistics started from
    /// them (files in total, days skipped).
    pub(crate) fn files_to_read(&self, q: &Query) -> Result<(Vec<String>, ReadStats), ReadError> {
        let (files, days_skipped) = self.candidate_files(q)?;
        let stats = ReadStats {
            files_total: files.len() as u64,
            days_skipped,
            ..ReadStats::default()
        };
        Ok((files, stats))
    }

    /// The data files a query may need, in partition and time order: with
    /// `since` or `until`, day partitions outside the window are not listed
    /// (one listing of the root, then one per day kept); returns how many
    /// were skipped.
    fn candidate_files(&self, q: &Query) -> Result<(Vec<String>, u64), ReadError> {
        if q.since.is_none() && q.until.is_none() {
            return Ok((self.files()?, 0));
        }
        let (dirs, files) = self.storage.list_children("")?;
        let mut out: Vec<String> = files
            .into_iter()
            .filter(|p| p.ends_with(".parquet"))
            .collect();
        let mut skipped = 0;
        for d in dirs {
            if let Some((start, _)) = hour_range(&format!("{d}/hour=00")) {
                let end = Timestamp {
                    seconds: start.seconds + 86_400,
                    nanos: 0,
                };
                if q.since.is_some_and(|s| end <= s) || q.until.is_some_and(|u| start > u) {
                    skipped += 1;
                    continue;
                }
            }
            out.extend(
                self.storage
                    .list(&d)?
                    .into_iter()
                    .filter(|p| p.ends_with(".parquet")),
            );
        }
        out.sort();
        Ok((out, skipped))
    }

    /// The store.
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Whether the hour partition of `path` may hold flows of the window.
    pub(crate) fn in_window(&self, path: &str, q: &Query) -> bool {
        !hour_range(path).is_some_and(|(start, end)| {
            q.since.is_some_and(|s| end <= s) || q.until.is_some_and(|u| start > u)
        })
    }

    /// Runs a query; flows come back in time order. With a limit (`number`)
    /// and filters that all have columns, rows are chosen from the columns
    /// (newest files first, or oldest with `first`) and only the chosen
    /// rows are decoded ([`crate::columnar`]). Without a limit, only the
    /// `flow_pb` of rows the window and verdicts keep is read, row groups
    /// spread over the cores (`history`); the result is
    /// [`Archive::query_decoded`]'s.
    pub fn query(&self, q: &Query) -> Result<(Vec<Flow>, ReadStats), ReadError> {
        // `--last N`: from the columns, newest files first, when they can.
        if let Some(res) = self.select_newest(q) {
            return res;
        }
        // Without a limit: late-materialised, over every core.
        if q.number.is_none() {
            return self.select_all(q);
        }
        self.query_decoded(q)
    }

    /// [`Archive::query`] decoding every row in the window that the verdict
    /// column does not rule out: the reference the columnar paths are
    /// tested against.
    pub fn query_decoded(&self, q: &Query) -> Result<(Vec<Flow>, ReadStats), ReadError> {
        let filters = query_filters(q)?;
        let verdicts = verdict_prefilter(&q.whitelist);
        let (files, mut stats) = self.files_to_read(q)?;
        let limit = q.number.unwrap_or(u64::MAX) as usize;
        let mut out: VecDeque<Flow> = VecDeque::new();
        'files: for path in files {
            if !self.in_window(&path, q) {
                continue;
            }
            stats.files_read += 1;
            let mut flows = match self.read_file(&path, q, verdicts.as_deref(), &mut stats) {
                Ok(f) => f,
                Err(ReadError::File { path, reason }) => {
                    stats.unreadable.push(format!("{path}: {reason}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            flows.sort_by_key(|f| f.time);
            for f in flows {
                if !filters.matches(&f) {
                    continue;
                }
                out.push_back(f);
                if q.first {
                    if out.len() >= limit {
                        break 'files;
                    }
                } else if out.len() > limit {
                    out.pop_front();
                }
            }
        }
        let mut v: Vec<Flow> = out.into();
        v.sort_by_key(|f| f.time);
        stats.warnings = self.storage.take_warnings();
        Ok((v, stats))
    }

    fn read_file(
        &self,
        path: &str,
        q: &Query,
        verdicts: Option<&[&'static str]>,
        stats: &mut ReadStats,
    ) -> Result<Vec<Flow>, ReadError> {
        let err = |reason: String| ReadError::File {
            path: path.to_owned(),
            reason,
        };
        let data = self
            .storage
            .get(path)?
            .ok_or_else(|| err("vanished while reading".into()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(data))
            .map_err(|e| err(e.to_string()))?;
        let md = builder.metadata().clone();
        let schema = builder.parquet_schema();
        let (time_idx, verdict_idx, pb_idx) = history_columns(schema).map_err(err)?;
        let groups = row_groups_in_window(&md, time_idx, q, stats);
        let mask = ProjectionMask::leaves(schema, [time_idx, verdict_idx, pb_idx]);
        let reader = builder
            .with_row_groups(groups)
            .with_projection(mask)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| err(e.to_string()))?;
            let time = column::<TimestampNanosecondArray>(&batch, "time");
            let verdict = column::<StringArray>(&batch, "verdict");
            let pb = column::<BinaryArray>(&batch, "flow_pb");
            let (Some(time), Some(verdict), Some(pb)) = (time, verdict, pb) else {
                return Err(err("unexpected column types".into()));
            };
            for row in 0..batch.num_rows() {
                let t = time.value(row) as i128;
                if q.since.is_some_and(|s| t < s.as_unix_nanos())
                    || q.until.is_some_and(|u| t > u.as_unix_nanos())
                {
                    continue;
                }
                if let Some(vs) = verdicts
                    && !verdict.is_null(row)
                    && !vs.contains(&verdict.value(row))
                {
                    stats.rows_prefiltered += 1;
                    continue;
                }
                stats.rows_decoded += 1;
                let f = Flow::decode(pb.value(row)).map_err(|e| err(format!("row {row}: {e}")))?;
                out.push(f);
            }
        }
        Ok(out)
    }
}

/// The row groups whose `time` statistics overlap the query's window;
/// the others are counted as skipped.
pub(crate) fn row_groups_in_window(
    md: &parquet::file::metadata::ParquetMetaData,
    time_idx: usize,
    q: &Query,
    stats: &mut ReadStats,
) -> Vec<usize> {
    let since = q.since.map(|t| t.as_unix_nanos() as i64);
    let until = q.until.map(|t| t.as_unix_nanos() as i64);
    let mut groups = Vec::new();
    for (i, rg) in md.row_groups().iter().enumerate() {
        if let Some(Statistics::Int64(s)) = rg.column(time_idx).statistics() {
            let (min, max) = (s.min_opt().copied(), s.max_opt().copied());
            if max.zip(since).is_some_and(|(max, since)| max < since)
                || min.zip(until).is_some_and(|(min, until)| min > until)
            {
                stats.row_groups_skipped += 1;
                continue;
            }
        }
        groups.push(i);
    }
    groups
}

/// The column `name` of `batch` as the array type `T` (`None` when it is
/// missing or of another type).
pub(crate) fn column<'a, T: 'static>(
    batch: &'a arrow_array::RecordBatch,
    name: &str,
) -> Option<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
}

/// The leaf indices of `time`, `verdict` and `flow_pb` in a file's schema
/// (what every history read needs), or why the file is not a flow archive.
pub(crate) fn history_columns(
    schema: &parquet::schema::types::SchemaDescriptor,
) -> Result<(usize, usize, usize), String> {
    let col = |name: &str| schema.columns().iter().position(|c| c.name() == name);
    match (col("time"), col("verdict"), col("flow_pb")) {
        (Some(time), Some(verdict), Some(flow_pb)) => Ok((time, verdict, flow_pb)),
        _ => Err("not a flow archive file (missing time, verdict or flow_pb)".into()),
    }
}

/// A query's filters, compiled; an invalid one is an error naming it.
pub(crate) fn query_filters(q: &Query) -> Result<FilterSet, ReadError> {
    FilterSet::compile(&q.whitelist, &q.blacklist).map_err(|e| ReadError::File {
        path: "filter".into(),
        reason: e.to_string(),
    })
}

/// The verdict names every allow filter restricts to, when each does.
pub(crate) fn verdict_prefilter(whitelist: &[FlowFilter]) -> Option<Vec<&'static str>> {
    if whitelist.is_empty() || whitelist.iter().any(|f| f.verdict.is_empty()) {
        return None;
    }
    let mut v: Vec<&'static str> = whitelist
        .iter()
        .flat_map(|f| f.verdict.iter())
        .filter_map(|v| Verdict::try_from(*v).ok().map(|v| v.as_str_name()))
        .collect();
    v.sort_unstable();
    v.dedup();
    Some(v)
}
