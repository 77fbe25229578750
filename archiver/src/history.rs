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
//!
//! [`Archive::query_rendered`] runs the same units but also turns each
//! unit's flows into output bytes on its thread ([`Render`]: `hubble observe
//! --archive` prints there), and the calling thread writes a unit's bytes
//! as soon as no unit still to come can hold an older flow (by the row
//! groups' `time` statistics); the others are merged line by line at the
//! end. The bytes equal rendering [`Archive::query`]'s flows in order.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

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
use proto::wkt::Timestamp;

use crate::read::{
    Archive, Query, ReadError, ReadStats, column, history_columns, query_filters,
    row_groups_in_window, verdict_prefilter,
};

/// Rows read at a time.
const BATCH_ROWS: usize = 8192;

/// Flows reserved per row group before decoding, at most.
const RESERVED_FLOWS: usize = 4096;

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
    /// No row is older than this (nanoseconds; the group's `time`
    /// statistics), `i128::MIN` when unknown (no statistics, or nulls).
    oldest: i128,
}

/// What one unit yields.
#[derive(Default)]
struct Part {
    flows: Vec<Flow>,
    prefiltered: u64,
    decoded: u64,
}

/// Why a unit gave nothing: its file is unreadable (the file is skipped
/// and named), or its flows could not be rendered (the query fails).
enum UnitError {
    File(String),
    Render(std::io::Error),
}

impl From<String> for UnitError {
    fn from(reason: String) -> Self {
        UnitError::File(reason)
    }
}

/// Turns flows into output bytes on the query's threads
/// ([`Archive::query_rendered`]): `hubble observe --archive` formats its
/// lines there, so printing is spread over the cores like the reading.
/// One is made per thread; it renders one flow at a time.
pub trait Render {
    /// Appends the whole output of `flow` (its line, with the newline) to
    /// `out`.
    fn render(&mut self, flow: Flow, out: &mut Vec<u8>) -> std::io::Result<()>;
}

/// A query's flows rendered by a [`Render`], held until written in the
/// query's order ([`Rendered::write_to`]).
#[derive(Debug, Default)]
struct Rendered {
    /// One chunk per unit read, in file and row-group order.
    chunks: Vec<Chunk>,
}

/// One unit's rendered flows, in time order (a stable sort of its rows).
#[derive(Debug, Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// Per flow: its time (the sort key) and where its output ends.
    ends: Vec<(Option<Timestamp>, usize)>,
    /// The oldest and newest flow times in nanoseconds, for deciding what
    /// can be written early; `i128::MIN` and `i128::MAX` when a flow has
    /// no time or one whose nanoseconds are outside `0..1e9` (where the
    /// nanosecond order might not be the sort's order), so it is never
    /// written early.
    oldest: i128,
    newest: i128,
}

impl Chunk {
    fn lines(&self) -> impl Iterator<Item = (Option<Timestamp>, &[u8])> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(t, end)| {
            let line = &self.bytes[start..end];
            start = end;
            (t, line)
        })
    }
}

impl Rendered {
    /// Renders flows already in order (a query with a limit) as one chunk.
    fn from_flows(flows: Vec<Flow>, r: &mut dyn Render) -> std::io::Result<Self> {
        let chunk = render_chunk(r, flows, &mut { RENDERED_BYTES_GUESS })?;
        Ok(Rendered {
            chunks: vec![chunk],
        })
    }

    /// Writes the leading chunks that no flow still to come can precede:
    /// those whose newest flow is not newer than `rest`, a lower bound of
    /// the times of every unit not yet added (each chunk is compared with
    /// the chunks after it too). Equal times keep unit order, as the stable
    /// sort does.
    fn write_ready(&mut self, rest: i128, w: &mut dyn Write) -> std::io::Result<()> {
        // The oldest flow of the chunks after each one, from the end.
        let mut bound = rest;
        let mut after = vec![0i128; self.chunks.len()];
        for (i, c) in self.chunks.iter().enumerate().rev() {
            after[i] = bound;
            bound = bound.min(c.oldest);
        }
        let ready = self
            .chunks
            .iter()
            .zip(&after)
            .take_while(|(c, after)| c.newest <= **after)
            .count();
        for c in self.chunks.drain(..ready) {
            w.write_all(&c.bytes)?;
        }
        Ok(())
    }

    /// Writes every flow's output in the query's order: a stable sort by
    /// time of the units' flows taken in file and row-group order, which is
    /// [`Archive::query`]'s order. When the units' times do not overlap
    /// (the usual case: files and row groups are written in time order)
    /// each chunk is written whole; otherwise line by line after a stable
    /// sort of the lines.
    fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let mut last: Option<Option<Timestamp>> = None;
        let in_order = self.chunks.iter().all(|c| {
            let ok = match (last, c.ends.first()) {
                (Some(prev), Some(&(first, _))) => prev <= first,
                _ => true,
            };
            if let Some(&(t, _)) = c.ends.last() {
                last = Some(t);
            }
            ok
        });
        if in_order {
            for c in &self.chunks {
                w.write_all(&c.bytes)?;
            }
            return Ok(());
        }
        let mut lines: Vec<(Option<Timestamp>, &[u8])> =
            self.chunks.iter().flat_map(Chunk::lines).collect();
        lines.sort_by_key(|l| l.0);
        for (_, line) in lines {
            w.write_all(line)?;
        }
        Ok(())
    }
}

/// Bytes per flow reserved before a thread has rendered any (a `-o json`
/// line of the synthetic mix is ~1.5 KB); after, its own average.
const RENDERED_BYTES_GUESS: usize = 2048;

/// Stable-sorts `flows` by time and renders each, recording where each ends.
/// `per_flow` is the bytes per flow to reserve (the buffer then grows at
/// most once instead of by doubling, each step copying and faulting in
/// fresh pages); it is updated to this chunk's average.
fn render_chunk(
    r: &mut dyn Render,
    mut flows: Vec<Flow>,
    per_flow: &mut usize,
) -> std::io::Result<Chunk> {
    flows.sort_by_key(|f| f.time);
    let mut chunk = Chunk {
        bytes: Vec::with_capacity(flows.len() * *per_flow),
        ends: Vec::with_capacity(flows.len()),
        oldest: i128::MAX,
        newest: i128::MIN,
    };
    for f in flows {
        let t = f.time;
        let (old, new) = match t {
            Some(t) if (0..1_000_000_000).contains(&t.nanos) => {
                (t.as_unix_nanos(), t.as_unix_nanos())
            }
            _ => (i128::MIN, i128::MAX),
        };
        chunk.oldest = chunk.oldest.min(old);
        chunk.newest = chunk.newest.max(new);
        r.render(f, &mut chunk.bytes)?;
        chunk.ends.push((t, chunk.bytes.len()));
    }
    if !chunk.ends.is_empty() {
        // A little over the average, so most chunks fit.
        *per_flow = chunk.bytes.len() / chunk.ends.len() * 9 / 8 + 1;
    }
    Ok(chunk)
}

impl Archive {
    /// [`Archive::query`] without a limit: see the module doc.
    pub(crate) fn select_all(&self, q: &Query) -> Result<(Vec<Flow>, ReadStats), ReadError> {
        let mut out = Vec::new();
        let stats = self.run_units(
            q,
            || (),
            |_, flows| Ok(flows),
            |parts, _| {
                out.extend(parts.into_iter().flatten());
                Ok(())
            },
        )?;
        out.sort_by_key(|f| f.time);
        Ok((out, stats))
    }

    /// [`Archive::query`] written to `out`: each flow rendered by a
    /// [`Render`] (one made by `make` per thread) on the thread that read
    /// it, and written in the query's order, byte for byte what rendering
    /// [`Archive::query`]'s flows one by one writes. Without a limit the
    /// output is written while later row groups are still being read: a
    /// unit's lines as soon as no unit still to come can hold an older
    /// flow (the `time` statistics of the row groups say), the rest at the
    /// end. A query with a limit reads as [`Archive::query`] does and
    /// renders the few flows it selects on the calling thread.
    ///
    /// If a flow cannot be rendered the query stops with
    /// [`ReadError::Output`]; the lines written by then precede it.
    pub fn query_rendered<R: Render>(
        &self,
        q: &Query,
        make: impl Fn() -> R + Sync,
        out: &mut dyn Write,
    ) -> Result<ReadStats, ReadError> {
        if q.number.is_some() {
            let (flows, stats) = self.query(q)?;
            let rendered = Rendered::from_flows(flows, &mut make()).map_err(ReadError::Output)?;
            rendered.write_to(out).map_err(ReadError::Output)?;
            return Ok(stats);
        }
        let mut pending = Rendered::default();
        let stats = self.run_units(
            q,
            || (make(), RENDERED_BYTES_GUESS),
            |(r, per_flow), flows| render_chunk(r, flows, per_flow).map_err(UnitError::Render),
            |chunks, rest| {
                pending.chunks.extend(chunks);
                pending.write_ready(rest, out).map_err(ReadError::Output)
            },
        )?;
        pending.write_to(out).map_err(ReadError::Output)?;
        Ok(stats)
    }

    /// Reads every unit of a query without a limit, on one thread per core,
    /// and turns each unit's kept flows (in row order) into a `T` by
    /// `finish` on the thread that read them, with that thread's state
    /// (made by `state`). The calling thread hands `sink` the `T`s of each
    /// file read whole as soon as it and the files before it are done, in
    /// file and row-group order, with a lower bound of the flow times of
    /// the files after it (nanoseconds, `i128::MAX` when none is left); a
    /// file failing anywhere adds none and is reported as unreadable.
    fn run_units<S, T: Send>(
        &self,
        q: &Query,
        state: impl Fn() -> S + Sync,
        finish: impl Fn(&mut S, Vec<Flow>) -> Result<T, UnitError> + Sync,
        mut sink: impl FnMut(Vec<T>, i128) -> Result<(), ReadError>,
    ) -> Result<ReadStats, ReadError> {
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
                let (inside, oldest) = match md.row_group(rg).column(file.time).statistics() {
                    Some(Statistics::Int64(s)) => {
                        let (min, max) = (s.min_opt().copied(), s.max_opt().copied());
                        let inside = since.is_none_or(|s| min.is_some_and(|m| i128::from(m) >= s))
                            && until.is_none_or(|u| max.is_some_and(|m| i128::from(m) <= u));
                        let oldest = match (min, s.null_count_opt()) {
                            (Some(m), Some(0)) => i128::from(m),
                            _ => i128::MIN,
                        };
                        (inside, oldest)
                    }
                    _ => (false, i128::MIN),
                };
                units.push(Unit {
                    file: files.len(),
                    row_group: rg,
                    inside,
                    oldest,
                });
            }
            files.push(file);
        }
        // Per file, the oldest flow any later file may hold.
        let mut later = vec![i128::MAX; files.len()];
        let mut bound = i128::MAX;
        for no in (0..files.len()).rev() {
            later[no] = bound;
            for u in units.iter().filter(|u| u.file == no) {
                bound = bound.min(u.oldest);
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(units.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        type Done<T> = Result<(T, u64, u64), UnitError>;
        let work = |tx: mpsc::Sender<(usize, Done<T>)>| {
            let mut st = state();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(u) = units.get(i) else {
                    return;
                };
                let f = &files[u.file];
                let res = read_unit(f, u, since, until, verdicts.as_deref(), &filters)
                    .map_err(UnitError::File)
                    .and_then(|p| Ok((finish(&mut st, p.flows)?, p.prefiltered, p.decoded)));
                if tx.send((i, res)).is_err() {
                    return;
                }
            }
        };
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let tx = tx.clone();
                    scope.spawn(|| work(tx))
                })
                .collect();
            drop(tx);
            let res = (|| {
                // Per file, in order: its units count only if every one
                // read.
                let mut done: Vec<Option<Done<T>>> = units.iter().map(|_| None).collect();
                let (mut next_file, mut next_unit) = (0, 0);
                for (i, res) in rx.iter() {
                    done[i] = Some(res);
                    while next_file < files.len() {
                        let end = next_unit
                            + units[next_unit..]
                                .iter()
                                .take_while(|u| u.file == next_file)
                                .count();
                        if done[next_unit..end].iter().any(Option::is_none) {
                            break;
                        }
                        let mut parts = Vec::new();
                        let mut failed = None;
                        for res in done[next_unit..end].iter_mut().filter_map(Option::take) {
                            match res {
                                Ok(p) => parts.push(p),
                                Err(UnitError::Render(e)) => return Err(ReadError::Output(e)),
                                Err(UnitError::File(e)) => {
                                    failed.get_or_insert(e);
                                }
                            }
                        }
                        if let Some(reason) = failed {
                            stats
                                .unreadable
                                .push(format!("{}: {reason}", files[next_file].path.as_str()));
                        } else {
                            let mut ts = Vec::with_capacity(parts.len());
                            for (t, prefiltered, decoded) in parts {
                                stats.rows_prefiltered += prefiltered;
                                stats.rows_decoded += decoded;
                                ts.push(t);
                            }
                            sink(ts, later[next_file])?;
                        }
                        next_file += 1;
                        next_unit = end;
                    }
                }
                Ok(())
            })();
            // On an error the workers stop after their current unit.
            stop.store(true, Ordering::Relaxed);
            drop(rx);
            for h in handles {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            res
        })?;
        stats.warnings = self.storage().take_warnings();
        Ok(stats)
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
            let time = column::<TimestampNanosecondArray>(&batch, "time");
            let verdict = column::<StringArray>(&batch, "verdict");
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
    // The flows kept are at most the rows selected: reserved up front, up
    // to a bound (Hubble's filters may still drop most), so the vector
    // rarely regrows (a `Flow` is ~1.4 KB to move).
    let selected = selection.as_ref().map_or(rows, |s| {
        s.iter().filter(|s| !s.skip).map(|s| s.row_count).sum()
    });
    part.flows.reserve_exact(selected.min(RESERVED_FLOWS));
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
