//! Archive benchmarks, printed for `just bench`:
//! 1. rows archived from what the archiver receives, encoded `GetFlowsResponse` bytes (the flow
//!    found in each, its columns scanned, its bytes stored as `flow_pb`, zstd Parquet, atomic
//!    files), per CPU-second of all the writer's threads and per wall second; the same on one
//!    thread; and the path before (prost decode into a `Flow`, `append`, re-encode), for
//!    comparison (`ARCHIVE_BENCH_VERIFY=1` adds `--verify-flows`, `ARCHIVE_BENCH_COMPRESSION`
//!    picks the codec). Building the responses is outside the measured time;
//! 2. bytes per flow on disk against the same flows as `hubble observe -o json` lines;
//! 3. DuckDB counting DROPPED by reason over the archive;
//! 4. the history query behind `hubble observe --archive --verdict DROPPED --since 1h`, whole and
//!    with `--last 20` (from the columns, newest files first; and decoding every row, for comparison);
//! 5. `hubble observe --archive --all --aggregate-by ...` grouped from the Parquet columns (issue 18:
//!    10 M flows in under a second), and the decoding path over `--since 1h` for comparison;
//! 6. the whole `hubble observe --archive DIR --verdict DROPPED --since 1h` command (`-o json` and
//!    `-o compact`, stdout to a file, the `target/release/hubble` binary), three runs each (issue 14).
//!
//! `cargo run --release -p archiver --example archive_bench -- [FLOWS] [DIR]` (default 10,000,000
//! flows over the last 10 hours, so `--since 1h` selects a tenth).

use std::sync::Arc;
use std::time::Instant;

use archiver::columnar;
use archiver::encoded;
use archiver::read::{Archive, Query};
use archiver::storage::LocalDir;
use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_parser::{Enricher, Parser, Synthetic};
use prost::Message as _;
use proto::flow::{FlowFilter, Verdict};
use proto::wkt::Timestamp;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let dir = args.next().unwrap_or_else(|| "target/bench-archive".into());
    let _ = std::fs::remove_dir_all(&dir);
    const SAMPLE: usize = 100_000;
    let mut g = Synthetic::new(9);
    let mut p = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = std::time::UNIX_EPOCH;
    let mut raw = Vec::new();
    let mut sample = Vec::with_capacity(SAMPLE);
    while sample.len() < SAMPLE {
        g.next_event(&mut raw);
        if let Ok(f) = p.decode(&raw, &clock) {
            sample.push(f);
        }
    }
    let json_bytes: usize = sample
        .iter()
        .map(|f| {
            let r = proto::observer::GetFlowsResponse {
                node_name: f.node_name.clone(),
                time: f.time,
                response_types: Some(proto::observer::get_flows_response::ResponseTypes::Flow(
                    f.clone(),
                )),
            };
            proto::json::to_hubble_json(&r)
                .map(|s| s.len() + 1)
                .unwrap_or(0)
        })
        .sum();
    let json_per_flow = json_bytes as f64 / SAMPLE as f64;

    let hours = 10i128;
    let end = Timestamp::now().as_unix_nanos();
    let start = end - hours * 3600 * 1_000_000_000;
    let step = (end - start) / i128::from(n);
    let time_of = |i: u64| Timestamp::from_unix_nanos(start + step * i128::from(i));
    let node = sample[0].node_name.clone();
    let responses = Responses::new(&sample, &node);
    // The bytes built are the responses' prost encodings (what the exporter
    // and relay send).
    for i in [0, 1, SAMPLE as u64 - 1] {
        let mut f = sample[i as usize % SAMPLE].clone();
        f.time = Some(time_of(i));
        let want = proto::observer::GetFlowsResponse {
            node_name: node.clone(),
            time: f.time,
            response_types: Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)),
        }
        .encode_to_vec();
        let mut got = Vec::new();
        responses.write(i as usize % SAMPLE, time_of(i), &mut got);
        assert_eq!(got, want, "bench response {i} is not the prost encoding");
    }

    // 1. The archiver's path: encoded responses as received, the flow's
    //    bytes found in each, columns scanned from them, the bytes archived.
    // ARCHIVE_BENCH_COMPRESSION (zstd:LEVEL, snappy, none) compares codecs.
    let compression = match std::env::var("ARCHIVE_BENCH_COMPRESSION") {
        Ok(c) => c.parse().map_err(anyhow::Error::msg)?,
        Err(_) => archiver::defaults::COMPRESSION,
    };
    let opts = WriterOptions {
        compression,
        ..WriterOptions::default()
    };
    let storage = Arc::new(LocalDir::new(&dir)?);
    let mut w = ArchiveWriter::new(storage.clone(), opts.clone())?;
    let mut m = Measured::default();
    let mut chunk = Chunk::default();
    let mut i = 0u64;
    while i < n {
        chunk.fill(&responses, i, n, &time_of);
        m.run(|| -> anyhow::Result<()> {
            for r in chunk.iter() {
                match encoded::response_flow(r)? {
                    Some(flow) => w.append_encoded(&r[flow])?,
                    None => anyhow::bail!("not a flow"),
                };
            }
            Ok(())
        })?;
        i += chunk.len() as u64;
    }
    let st = m.run(|| w.finish())?;
    m.print(
        &format!(
            "archive write (encoded GetFlowsResponse -> scan -> Parquet {compression}, encoder thread)"
        ),
        n,
        &st,
    );
    let bytes_per_flow = st.bytes as f64 / n as f64;
    println!(
        "archive size: {bytes_per_flow:.1} bytes/flow on disk vs {json_per_flow:.1} bytes/flow as hubble -o json ({:.1}x smaller)",
        json_per_flow / bytes_per_flow
    );

    // 2. The same on one thread (pages encoded and compressed on the
    //    appending thread); 3. the path before: each response decoded by
    //    prost into a Flow, appended (columns from the Flow, flow_pb encoded
    //    again), on one thread as it was; with ARCHIVE_BENCH_VERIFY=1 also
    //    4. --verify-flows.
    let mut variants = vec!["one-thread", "decode"];
    if std::env::var_os("ARCHIVE_BENCH_VERIFY").is_some() {
        variants.push("verify");
    }
    for variant in variants {
        let other = format!("{dir}-{variant}");
        let _ = std::fs::remove_dir_all(&other);
        let storage = Arc::new(LocalDir::new(&other)?);
        let mut w = ArchiveWriter::new(
            storage,
            WriterOptions {
                verify_flows: variant == "verify",
                encoder_thread: variant == "verify",
                ..opts.clone()
            },
        )?;
        let mut m = Measured::default();
        let mut i = 0u64;
        while i < n {
            chunk.fill(&responses, i, n, &time_of);
            m.run(|| -> anyhow::Result<()> {
                for r in chunk.iter() {
                    if variant == "decode" {
                        let resp = proto::observer::GetFlowsResponse::decode(r)?;
                        if let Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) =
                            resp.response_types
                        {
                            w.append(&f)?;
                        }
                    } else if let Some(flow) = encoded::response_flow(r)? {
                        w.append_encoded(&r[flow])?;
                    }
                }
                Ok(())
            })?;
            i += chunk.len() as u64;
        }
        let st = m.run(|| w.finish())?;
        m.print(
            match variant {
                "decode" => "archive write, the path before (prost decode -> append(&Flow) -> re-encode, one thread)",
                "verify" => "archive write (encoded, --verify-flows, encoder thread)",
                _ => "archive write (encoded, one thread: pages encoded on the appending thread)",
            },
            n,
            &st,
        );
        let _ = std::fs::remove_dir_all(&other);
    }

    let t = Instant::now();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import duckdb,time; c=duckdb.connect(); t=time.time(); r=c.execute(\"select drop_reason_desc, count(*) from read_parquet('{dir}/**/*.parquet', hive_partitioning=true) where verdict='DROPPED' group by 1\").fetchall(); print(f'{{time.time()-t:.2f}}', r)"
        ))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_once(' ') {
        Some((s, rows)) if out.status.success() => {
            println!(
                "duckdb: count DROPPED by reason over {n} flows in {s} s -> {}",
                rows.trim()
            )
        }
        _ => println!(
            "duckdb: not measured ({}{})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or(""),
            text.trim()
        ),
    }
    let _ = t;

    let q = Query {
        since: Some(Timestamp::from_unix_nanos(end - 3600 * 1_000_000_000)),
        whitelist: vec![FlowFilter {
            verdict: vec![Verdict::Dropped as i32],
            ..Default::default()
        }],
        ..Default::default()
    };
    let archive = Archive::new(storage);
    let t = Instant::now();
    let (flows, stats) = archive.query(&q)?;
    println!(
        "history query (observe --archive --verdict DROPPED --since 1h) over {n} flows: {:.2} s, {} flows; \
         files read {}/{}, row groups skipped {}, rows prefiltered {}, rows decoded {}",
        t.elapsed().as_secs_f64(),
        flows.len(),
        stats.files_read,
        stats.files_total,
        stats.row_groups_skipped,
        stats.rows_prefiltered,
        stats.rows_decoded
    );

    let last = Query {
        number: Some(20),
        ..q.clone()
    };
    for (name, f) in [
        (
            "from the columns",
            Archive::query as fn(&Archive, &Query) -> _,
        ),
        ("decoding every row", Archive::query_decoded),
    ] {
        let t = Instant::now();
        let (flows, stats) = f(&archive, &last)?;
        println!(
            "history query (observe --archive --verdict DROPPED --since 1h --last 20) over {n} flows, {name}: {:.3} s, {} flows; files read {}/{}, rows decoded {}",
            t.elapsed().as_secs_f64(),
            flows.len(),
            stats.files_read,
            stats.files_total,
            stats.rows_decoded
        );
    }

    let all = Query::default();
    for fields in [
        "source.namespace,source.pod_name,verdict",
        "source.pod_name,destination.pod_name,l4.TCP.destination_port,verdict",
    ] {
        let paths: Vec<String> = fields.split(',').map(str::to_owned).collect();
        let plan = columnar::plan(&all, &paths).map_err(anyhow::Error::msg)?;
        let t = Instant::now();
        let (groups, _) = archive.aggregate(&all, &plan)?;
        let rows: u64 = groups.iter().map(|g| g.count).sum();
        println!(
            "aggregation (observe --archive --all --aggregate-by {fields}) over {n} flows from the columns: {:.3} s, {} groups, {rows} flows",
            t.elapsed().as_secs_f64(),
            groups.len()
        );
    }
    let paths: Vec<String> = ["source.namespace", "source.pod_name", "verdict"]
        .map(str::to_owned)
        .to_vec();
    let hour = Query {
        since: q.since,
        ..Default::default()
    };
    let plan = columnar::plan(&hour, &paths).map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    let (groups, _) = archive.aggregate(&hour, &plan)?;
    let columns_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (flows, _) = archive.query_decoded(&hour)?;
    let mut decoded = std::collections::HashMap::new();
    for f in &flows {
        let json = serde_json::to_value(f)?;
        let key: Vec<serde_json::Value> = ["source", "source", "verdict"]
            .iter()
            .zip(["namespace", "pod_name", ""])
            .map(|(a, b)| {
                let v = &json[a];
                if b.is_empty() {
                    v.clone()
                } else {
                    v[b].clone()
                }
            })
            .collect();
        *decoded.entry(serde_json::to_string(&key)?).or_insert(0u64) += 1;
    }
    println!(
        "aggregation over --since 1h ({} flows): from the columns {columns_secs:.3} s ({} groups), decoding each flow {:.3} s ({} groups)",
        flows.len(),
        groups.len(),
        t.elapsed().as_secs_f64(),
        decoded.len()
    );

    // The whole `hubble observe --archive` command (the row of issue 14):
    // the real binary next to this example's directory, stdout to a file.
    let since = Timestamp::from_unix_nanos(end - 3600 * 1_000_000_000);
    let since = chrono::DateTime::from_timestamp(since.seconds, since.nanos as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    whole_command(&dir, &since)?;
    Ok(())
}

/// Runs `hubble observe --archive DIR --verdict DROPPED --since <1 h before
/// the archive's end>` (`--since` as an absolute time, so the window is the
/// same hour as the history query row however long ago the archive was
/// made) with `-o json` and `-o compact`, stdout to a file, three times
/// each (interleaved), and prints the wall time min–max and the lines.
fn whole_command(dir: &str, since: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let Some(hubble) = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("hubble"))
        .filter(|p| p.exists())
    else {
        println!(
            "hubble observe --archive (whole command): not measured (no `hubble` binary next to {}; `cargo build --release -p hubble-tui` first)",
            exe.display()
        );
        return Ok(());
    };
    let out_path = std::path::Path::new(dir).join("observe-out.txt");
    let mut times: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut lines: std::collections::BTreeMap<&str, usize> = Default::default();
    for _ in 0..3 {
        for output in ["json", "compact"] {
            let file = std::fs::File::create(&out_path)?;
            let t = Instant::now();
            let st = std::process::Command::new(&hubble)
                .args(["observe", "--archive", dir, "--verdict", "DROPPED"])
                .args(["--since", since, "-o", output])
                .stdout(file)
                .stderr(std::process::Stdio::null())
                .status()?;
            let secs = t.elapsed().as_secs_f64();
            anyhow::ensure!(st.success(), "hubble observe --archive -o {output}: {st}");
            times.entry(output).or_default().push(secs);
            let text = std::fs::read(&out_path)?;
            lines.insert(output, text.iter().filter(|&&b| b == b'\n').count());
        }
    }
    let _ = std::fs::remove_file(&out_path);
    for (output, t) in &times {
        let min = t.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.iter().copied().fold(0.0, f64::max);
        println!(
            "hubble observe --archive --verdict DROPPED --since 1h -o {output} > file (the whole command, {}): {min:.2}-{max:.2} s over {} runs, {} lines",
            hubble.display(),
            t.len(),
            lines[output]
        );
    }
    Ok(())
}

/// The sample flows as `GetFlowsResponse` bytes with any time: each flow's
/// encoding without its time (prost writes `time`, field 1, first), so a
/// response is put together by copying.
struct Responses {
    node_name: Vec<u8>,
    flows: Vec<Vec<u8>>,
}

impl Responses {
    fn new(sample: &[proto::flow::Flow], node: &str) -> Self {
        let flows = sample
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.time = None;
                f.encode_to_vec()
            })
            .collect();
        let mut node_name = Vec::new();
        prost::encoding::string::encode(1000, &node.to_owned(), &mut node_name);
        Responses { node_name, flows }
    }

    /// Response `i` of the sample at `t`, appended to `out`.
    fn write(&self, i: usize, t: Timestamp, out: &mut Vec<u8>) {
        let mut time = Vec::with_capacity(16);
        prost::encoding::message::encode(1, &t, &mut time);
        let flow = &self.flows[i];
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, out);
        prost::encoding::encode_varint((time.len() + flow.len()) as u64, out);
        out.extend_from_slice(&time);
        out.extend_from_slice(flow);
        out.extend_from_slice(&self.node_name);
        prost::encoding::message::encode(1001, &t, out);
    }
}

/// A batch of encoded responses, built outside the measured time (it
/// stands for what the network delivers).
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Chunk {
    const ROWS: u64 = 4096;

    fn fill(&mut self, r: &Responses, from: u64, n: u64, time_of: &dyn Fn(u64) -> Timestamp) {
        self.bytes.clear();
        self.ends.clear();
        for i in from..(from + Self::ROWS).min(n) {
            r.write(i as usize % r.flows.len(), time_of(i), &mut self.bytes);
            self.ends.push(self.bytes.len());
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }
}

/// Wall and CPU time of the measured parts only.
#[derive(Default)]
struct Measured {
    wall: std::time::Duration,
    cpu: std::time::Duration,
}

impl Measured {
    fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (w, c) = (Instant::now(), thread_cpu());
        let out = f();
        self.cpu += thread_cpu().saturating_sub(c);
        self.wall += w.elapsed();
        out
    }

    /// The figures; CPU is the appending thread's measured parts plus the
    /// encoder threads' whole lives.
    fn print(&self, what: &str, n: u64, st: &archiver::writer::WriterStats) {
        let cpu = self.cpu + st.encoder_cpu;
        println!(
            "{what}: {:.0} rows per CPU-second (all writer threads), {:.0} rows/s wall \
             ({} rows, {} files, {:.1} s CPU of which {:.1} s encoder thread, {:.1} s wall, {:.1} bytes/flow)",
            n as f64 / cpu.as_secs_f64(),
            n as f64 / self.wall.as_secs_f64(),
            st.rows,
            st.files,
            cpu.as_secs_f64(),
            st.encoder_cpu.as_secs_f64(),
            self.wall.as_secs_f64(),
            st.bytes as f64 / n as f64,
        );
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
