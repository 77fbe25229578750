//! Privileged end-to-end ABI test: builds `bpf/test_emit.bpf.c` with clang,
//! loads it with aya (so the verifier checks the bounded packet copy), runs it
//! with `BPF_PROG_TEST_RUN` on crafted frames and decodes what it wrote into
//! the `events` ring buffer with [`ebpf::parse`].
//!
//! Skips with a one-line reason when not root or when clang is missing.
//! Maps are pinned (the ring buffer is `LIBBPF_PIN_BY_NAME`) into a private
//! bpffs mounted in a scratch directory and unmounted afterwards, so the
//! host's /sys/fs/bpf is never touched.

use std::path::Path;
use std::process::Command;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{SchedClassifier, TestRun as _, TestRunOptions};
use ebpf::{RawEvent, ct_state, direction, drop_reason, msg_type, policy_match, trace_point};

/// Values hard-coded in test_emit.bpf.c.
const SOURCE_EP: u16 = 42;
const DST_EP: u16 = 7;
const SRC_LABEL: u32 = 0x10001;
const DST_LABEL: u32 = 0x10002;

/// A private bpffs in a scratch directory (gone even when the test fails).
type Scratch = test_support::BpffsScratch;

/// Why the test cannot run here, if it cannot. Under CI (`CI` set) a
/// missing prerequisite is a failure, never a silent skip.
fn skip_reason() -> Option<String> {
    test_support::skip_reason(&["clang"])
}

fn build(obj: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("clang")
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("-I")
        .arg(root.join("include"))
        .arg("-c")
        .arg(root.join("bpf/test_emit.bpf.c"))
        .arg("-o")
        .arg(obj)
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ethernet + IPv4 + TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80, then `extra`
/// payload bytes.
fn tcp_frame(extra: usize) -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // eth
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // ipv4
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // tcp
    ];
    let ip_len = (f.len() - 14 + extra) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f.extend((0..extra).map(|i| i as u8));
    f
}

#[test]
fn emit_events_roundtrip_through_ring_buffer() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let scratch = Scratch::new("ebpf-test-emit-");
    let obj = scratch.dir.join("test_emit.bpf.o");
    build(&obj);

    let mut bpf = aya::EbpfLoader::new()
        .default_map_pin_directory(&scratch.bpffs)
        .load_file(&obj)
        .expect("load object");
    assert!(
        scratch.bpffs.join("events").exists(),
        "events map pinned by name"
    );
    let prog: &mut SchedClassifier = bpf
        .program_mut("emit_events")
        .expect("program emit_events")
        .try_into()
        .expect("classifier");
    prog.load().expect("verifier accepts emit_events");

    // 54-byte frame (captured whole), 74 bytes, and 354 bytes (cut at 128).
    for frame in [tcp_frame(0), tcp_frame(20), tcp_frame(300)] {
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&frame);
        let r = prog.test_run(opts).expect("test run");
        assert_eq!(r.return_value, 0, "TC_ACT_OK");
    }

    let mut rb = RingBuf::try_from(bpf.take_map("events").expect("events map")).expect("ringbuf");
    let mut records = Vec::new();
    while let Some(item) = rb.next() {
        records.push(item.to_vec());
    }
    assert_eq!(records.len(), 9, "three events per run");

    for (i, rec) in records.iter().enumerate() {
        let run = i / 3;
        let frame = tcp_frame([0, 20, 300][run]);
        let want_cap = frame.len().min(ebpf::CAPTURE_MAX);
        let ev = ebpf::parse(rec).unwrap_or_else(|e| panic!("record {i}: {e}"));
        let hdr = *ev.hdr();
        assert_eq!(hdr.version, ebpf::EVENT_VERSION);
        assert_eq!(hdr.source, SOURCE_EP);
        assert_eq!(usize::from(hdr.cap_len), want_cap);
        assert_eq!(hdr.orig_len as usize, frame.len());
        assert!(hdr.ktime_ns > 0);
        assert_eq!(ev.payload(), &frame[..want_cap], "captured bytes");
        match (i % 3, ev) {
            (0, RawEvent::Trace(t, _)) => {
                assert_eq!(hdr.r#type, msg_type::TRACE);
                assert_eq!(hdr.subtype, trace_point::FROM_LXC);
                assert_eq!(
                    (t.src_label, t.dst_label, t.dst_id),
                    (SRC_LABEL, DST_LABEL, DST_EP)
                );
                assert_eq!(t.reason, ct_state::NEW);
                assert_eq!(t.ifindex, 1, "lo without ctx_in");
            }
            (1, RawEvent::Drop(d, _)) => {
                assert_eq!(hdr.subtype, drop_reason::POLICY_DENIED);
                assert_eq!(d.file, ebpf::src_file::TEST_EMIT);
                assert!(d.line > 0);
                assert_eq!(d.direction, direction::INGRESS);
                assert_eq!((d.pad, d.rule), (0, 0), "a default deny has no rule origin");
            }
            (2, RawEvent::PolicyVerdict(v, _)) => {
                assert!(v.allowed());
                assert_eq!((v.remote_label, v.local_label), (DST_LABEL, SRC_LABEL));
                assert_eq!((v.dst_port, v.proto), (80, 6));
                assert_eq!(v.direction, direction::EGRESS);
                assert_eq!(v.match_type, policy_match::L3_L4);
                assert_eq!(
                    (v.rule, v.pad2),
                    (0xc0ff_ee01, 0),
                    "rule origin (TEST_RULE)"
                );
            }
            (k, other) => panic!("record {i}: unexpected kind {k}: {other:?}"),
        }
    }

    let lost: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(bpf.take_map("lost_events").expect("lost_events map"))
            .expect("percpu array");
    let total: u64 = lost.get(&0, 0).expect("read lost_events").iter().sum();
    assert_eq!(total, 0);
}
