//! Writes synthetic datapath records and their enrichment file, for seeding
//! the fuzzer or feeding tools by hand:
//!
//! ```sh
//! cargo run -p flow-parser --example synthetic_dump -- OUT_DIR [COUNT] [SEED]
//! ```
//!
//! Creates `OUT_DIR/event-NNNNN.bin` (one ABI record each) and
//! `OUT_DIR/enrichment.yaml`.

use std::path::PathBuf;

use flow_parser::Synthetic;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: synthetic_dump OUT_DIR [COUNT] [SEED]");
        std::process::exit(2);
    };
    let count: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    std::fs::create_dir_all(&dir)?;
    let mut g = Synthetic::new(seed);
    let mut buf = Vec::new();
    for i in 0..count {
        g.next_event(&mut buf);
        std::fs::write(dir.join(format!("event-{i:05}.bin")), &buf)?;
    }
    std::fs::write(dir.join("enrichment.yaml"), g.enrichment().to_yaml())?;
    Ok(())
}
