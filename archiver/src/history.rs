//! The history query without a limit (`hubble observe --archive DIR
//! --since 1h --verdict DROPPED`), late-materialised and spread over the
//! cores.
//!
//! It selects exactly the rows [`Archive::query_decoded`] selects, in the
//! same order, but reads less and decodes on every core:
//!
//! - the work is cut into row groups (those left by the partition and
//!   `time`-statistics pruning), taken in turn by one thread per core;
//! - per row group, the `time` and `verdict` columns are read first and
//!   the rows outside the window or of a verdict no allow filter names are
//!   dropped; only the remaining rows' `flow_pb` values are then read
//!   (Parquet row selection: the others are skipped inside their pages,
//!   never copied out) and decoded, and Hubble's filters
//!   ([`flow_filter::FilterSet`]) decide;
//! - a row group the window and the verdicts cannot cut skips the first
//!   read.
//!
//! Results are joined in file and row-group order and sorted by time (a
//! stable sort, as the decoding path does), so the output is identical.
//! A file failing anywhere adds none of its flows and is reported as
//! unreadable, as on the decoding path.

use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{Array, BinaryArray, StringArray, TimestampNanosecondArray};
use flow_filter::FilterSet;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelectionPolicy, RowSelector,
};
use parquet::file::statistics::Statistics;
use prost::Message;
use proto::flow::Flow;

use crate::read::{
    Archive, Query, ReadError, ReadStats, history_columns, query_filters, row_groups_in_window,
    verdict_prefilter,
};

/// Rows read at a time.
const BATCH_ROWS: usize = 8192;

/// A file's bytes: a local file (each reader opens its own handle, since
/// handles of one open file share their offset) or an object fetched once.
#[derive(Clone)]
enum Input {
    Path(std::path::PathBuf),
    Mem(bytes::Bytes),
}

/// A reader of one file (a fresh handle for a local file).
enum Reader {
    File(std::fs::File),
    Mem(bytes::Bytes),
}

impl Input {
    fn open(&self) -> std::io::Result<Reader> {
        Ok(match self {
            Input::Path(p) => Reader::File(std::fs::File::open(p)?),
            Input::Mem(b) => Reader::Mem(b.clone()),
        })
    }
}

impl parquet::file::reader::Length for Reader {
    fn len(&self) -> u64 {
        match self {
            Reader::Mem(b) => b.len() as u64,
            Reader::File(f) => parquet::file::reader::Length::len(f),
        }
    }
}

impl parquet::file::reader::ChunkReader for Reader {
    type T = Box<dyn std::io::Read>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Reader::Mem(b) => Box::new(b.get_read(start)?),
            Reader::File(f) => Box::new(f.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        match self {
            Reader::Mem(b) => b.get_bytes(start, length),
            Reader::File(f) => f.get_bytes(start, length),
        }
    }
}

/// One file to read: its bytes, footer and the positions of its columns.
struct File {
    path: String,
    input: Input,
    meta: ArrowReaderMetadata,
    time: usize,
    verdict: usize,
    flow_pb: usize,
}

/// One row group of one file: the unit of work.
struct Unit {
    file: usize,
    row_group: usize,
    /// Whether every row is in the window (by the group's statistics), so
    /// only the verdicts can drop rows.
    inside: bool,
}

/// What one unit yields.
#[derive(Default)]
struct Part {
    flows: Vec<Flow>,
    prefiltered: u64,
    decoded: u64,
}

impl Archive {
    /// [`Archive::query`] without a limit: see the module doc.
    pub(crate) fn select_all(&self, q: &Query) -> Result<(Vec<Flow>, ReadStats), ReadError> {
        let filters = query_filters(q)?;
        let verdicts = verdict_prefilter(&q.whitelist);
        let (paths, mut stats) = self.files_to_read(q)?;
        let (since, until) = (
            q.since.map(|t| t.as_unix_nanos()),
            q.until.map(|t| t.as_unix_nanos()),
        );
        let mut files = Vec::new();
        let mut units = Vec::new();
        for path in paths {
            if !self.in_window(&path, q) {
                continue;
            }
            stats.files_read += 1;
            let file = match self.open_file(&path) {
                Ok(f) => f,
                Err(ReadError::File { path, reason }) => {
                    stats.unreadable.push(format!("{path}: {reason}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let md = file.meta.metadata();
            for rg in row_groups_in_window(md, file.time, q, &mut stats) {
                let inside = match md.row_group(rg).column(file.time).statistics() {
                    Some(Statistics::Int64(s)) => {
                        let (min, max) = (s.min_opt().copied(), s.max_opt().copied());
                        since.is_none_or(|s| min.is_some_and(|m| i128::from(m) >= s))
                            && until.is_none_or(|u| max.is_some_and(|m| i128::from(m) <= u))
                    }
                    _ => false,
                };
                units.push(Unit {
                    file: files.len(),
                    row_group: rg,
                    inside,
                });
            }
            files.push(file);
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(units.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done: Vec<(usize, Result<Part, String>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(u) = units.get(i) else {
                    return done;
                };
                let f = &files[u.file];
                done.push((
                    i,
                    read_unit(f, u, since, until, verdicts.as_deref(), &filters),
                ));
            }
        };
        let mut results: Vec<(usize, Result<Part, String>)> = if threads < 2 {
            work()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        results.sort_unstable_by_key(|r| r.0);
        // Per file, in order: its flows count only if every unit read.
        let mut out: Vec<Flow> = Vec::new();
        let mut results = results.into_iter().peekable();
        for (no, file) in files.iter().enumerate() {
            let mut parts = Vec::new();
            let mut failed = None;
            while let Some((_, res)) = results.next_if(|(i, _)| units[*i].file == no) {
                match res {
                    Ok(p) => parts.push(p),
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(reason) = failed {
                stats
                    .unreadable
                    .push(format!("{}: {reason}", file.path.as_str()));
                continue;
            }
            for p in parts {
                stats.rows_prefiltered += p.prefiltered;
                stats.rows_decoded += p.decoded;
                out.extend(p.flows);
            }
        }
        out.sort_by_key(|f| f.time);
        stats.warnings = self.storage().take_warnings();
        Ok((out, stats))
    }

    fn open_file(&self, path: &str) -> Result<File, ReadError> {
        let err = |reason: String| ReadError::File {
            path: path.to_owned(),
            reason,
        };
        let input = match self.storage().local_path(path) {
            Some(p) => Input::Path(p),
            None => Input::Mem(bytes::Bytes::from(
                self.storage()
                    .get(path)?
                    .ok_or_else(|| err("vanished while reading".into()))?,
            )),
        };
        let reader = input.open().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => err("vanished while reading".into()),
            _ => err(e.to_string()),
        })?;
        let meta = ArrowReaderMetadata::load(&reader, ArrowReaderOptions::new())
            .map_err(|e| err(e.to_string()))?;
        let schema = meta.parquet_schema();
        let (time, verdict, flow_pb) = history_columns(schema).map_err(err)?;
        Ok(File {
            path: path.to_owned(),
            input,
            meta,
            time,
            verdict,
            flow_pb,
        })
    }
}

/// Reads one row group: the rows the window and the verdicts keep, decoded
/// and matched. `Err` says why the file is unreadable.
fn read_unit(
    f: &File,
    u: &Unit,
    since: Option<i128>,
    until: Option<i128>,
    verdicts: Option<&[&'static str]>,
    filters: &FilterSet,
) -> Result<Part, String> {
    let builder = || -> Result<_, String> {
        let reader = f.input.open().map_err(|e| e.to_string())?;
        Ok(
            ParquetRecordBatchReaderBuilder::new_with_metadata(reader, f.meta.clone())
                .with_row_groups(vec![u.row_group])
                .with_batch_size(BATCH_ROWS),
        )
    };
    let mut part = Part::default();
    let rows = f.meta.metadata().row_group(u.row_group).num_rows() as usize;
    let selection = if u.inside && verdicts.is_none() {
        None
    } else {
        let b = builder()?;
        let mask = ProjectionMask::leaves(b.parquet_schema(), [f.time, f.verdict]);
        let reader = b.with_projection(mask).build().map_err(|e| e.to_string())?;
        let mut selectors: Vec<RowSelector> = Vec::new();
        let mut push = |keep: bool| match selectors.last_mut() {
            Some(s) if s.skip != keep => s.row_count += 1,
            _ => selectors.push(if keep {
                RowSelector::select(1)
            } else {
                RowSelector::skip(1)
            }),
        };
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let time = batch
                .column_by_name("time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
            let verdict = batch
                .column_by_name("verdict")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>());
            let (Some(time), Some(verdict)) = (time, verdict) else {
                return Err("unexpected column types".into());
            };
            for row in 0..batch.num_rows() {
                let t = i128::from(time.value(row));
                if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                    push(false);
                    continue;
                }
                if let Some(vs) = verdicts
                    && !verdict.is_null(row)
                    && !vs.contains(&verdict.value(row))
                {
                    part.prefiltered += 1;
                    push(false);
                    continue;
                }
                push(true);
            }
        }
        Some(selectors)
    };
    if let Some(s) = &selection {
        if s.iter().map(|s| s.row_count).sum::<usize>() != rows {
            return Err("row count disagrees with the footer".into());
        }
        if s.iter().all(|s| s.skip) {
            return Ok(part);
        }
    }
    let b = builder()?;
    let mask = ProjectionMask::leaves(b.parquet_schema(), [f.flow_pb]);
    let mut b = b.with_projection(mask);
    if let Some(s) = selection {
        b = b
            .with_row_selection(RowSelection::from(s))
            .with_row_selection_policy(RowSelectionPolicy::Selectors);
    }
    let reader = b.build().map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let pb = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or("unexpected column types")?;
        for row in 0..batch.num_rows() {
            part.decoded += 1;
            let flow = Flow::decode(pb.value(row)).map_err(|e| format!("row {row}: {e}"))?;
            if filters.matches(&flow) {
                part.flows.push(flow);
            }
        }
    }
    Ok(part)
}
