//! Writes an archive of synthetic datapath flows (the Star Wars mix of the
//! exporter's synthetic source), spread over the last `--hours` hours, for
//! the example notebook and the benchmarks.
//!
//! `cargo run --release -p archiver --example make_archive -- DIR [FLOWS] [HOURS]`
//! (DIR may be `s3://bucket/prefix`, configured by the `AWS_*` variables)

use std::sync::Arc;

use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_parser::{Enricher, Parser, Synthetic};
use proto::wkt::Timestamp;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: make_archive DIR [FLOWS] [HOURS]"))?;
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let hours: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let storage = archiver::location::open(&dir)?; // a directory or s3://bucket/prefix
    let mut w = ArchiveWriter::new(storage, WriterOptions::default())?;
    let mut g = Synthetic::new(42);
    let mut p = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let start = Timestamp::now().as_unix_nanos() - i128::from(hours) * 3600 * 1_000_000_000;
    let step = i128::from(hours) * 3600 * 1_000_000_000 / i128::from(n.max(1));
    let mut raw = Vec::new();
    let mut i = 0u64;
    while i < n {
        g.next_event(&mut raw);
        let t = start + step * i128::from(i);
        let clock =
            move |_k: u64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.max(0) as u64);
        if let Ok(f) = p.decode(&raw, &clock) {
            w.append(&f)?;
            i += 1;
        }
    }
    let st = w.finish()?;
    eprintln!(
        "wrote {} flows in {} files ({} bytes) to {dir}",
        st.rows, st.files, st.bytes
    );
    Ok(())
}
