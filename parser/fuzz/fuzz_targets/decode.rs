//! Arbitrary bytes → `Parser::decode` must return `Ok` or `Err`, never
//! panic. Half of the inputs get a valid ABI header prefix so the L2–L4
//! decoders and the enricher are reached, not just the length checks.

#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
use libfuzzer_sys::fuzz_target;

fn parser() -> &'static Mutex<Parser> {
    static P: OnceLock<Mutex<Parser>> = OnceLock::new();
    P.get_or_init(|| {
        let e = Enricher::from_static(Arc::new(Synthetic::new(1).enrichment()));
        Mutex::new(Parser::new("fuzz", e).with_uuid_seed(1))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut p = parser().lock().unwrap_or_else(|e| e.into_inner());
    let clock = ClockOffset::new(0);
    let _ = p.decode(data, &clock);
    // The same bytes behind a well-formed header of each kind.
    if let Some((&kind, rest)) = data.split_first() {
        let ty = [
            ebpf::msg_type::TRACE,
            ebpf::msg_type::DROP,
            ebpf::msg_type::POLICY_VERDICT,
        ][usize::from(kind % 3)];
        let mut buf = rest.to_vec();
        if buf.len() >= 8 {
            buf[0] = ty;
            buf[2] = ebpf::EVENT_VERSION;
            let size = match ty {
                ebpf::msg_type::TRACE => ebpf::TraceEvent::SIZE,
                _ => ebpf::DropEvent::SIZE,
            };
            let cap = buf.len().saturating_sub(size).min(ebpf::CAPTURE_MAX) as u16;
            buf[6..8].copy_from_slice(&cap.to_le_bytes());
            let _ = p.decode(&buf, &clock);
        }
    }
});
