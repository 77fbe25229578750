//! Rows from received bytes (`ArchiveWriter::append_encoded`, the scan of
//! `archiver::encoded`) are the rows of the decoded flow
//! (`ArchiveWriter::append`): for the exporter's fixtures, the synthetic
//! mix and hand-made edge cases, the columns are equal, `flow_pb` is the
//! bytes received (the sent flow's encoding), and whole archive files are
//! byte-identical (with and without the encoder thread). Irregular protobuf (merged occurrences) falls back to
//! prost; bytes prost refuses are refused, and mutated bytes prost accepts
//! give prost's columns.

mod common;

use std::sync::Arc;

use archiver::encoded::{FlowScan, Scan};
use archiver::schema::BatchBuilder;
use archiver::storage::{LocalDir, Storage};
use archiver::writer::{ArchiveWriter, Encoded, WriteError, WriterOptions};
use flow_exporter::sources::replay::{ReplayEvent, parse_line};
use prost::Message as _;
use proto::flow::{
    CiliumEventType, Endpoint, Flow, IcmPv4, IcmPv6, Igmp, Layer4, NetworkInterface, Policy, Sctp,
    Service, Tcp, TcpFlags, Udp, Vrrp, Workload, layer4,
};
use proto::wkt::{BoolValue, Timestamp};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../flow-exporter/testdata/flows.jsonl"
);

fn fixtures() -> Vec<Flow> {
    let flows: Vec<Flow> = std::fs::read_to_string(FIXTURE)
        .expect("flow-exporter/testdata/flows.jsonl")
        .lines()
        .filter_map(|l| match parse_line(l) {
            Ok(Some(ReplayEvent::Flow(f))) => Some(f),
            _ => None,
        })
        .collect();
    assert!(flows.len() >= 10, "the fixture file has its flows");
    flows
}

fn synthetic(n: usize) -> Vec<Flow> {
    common::synthetic(11, n, |_, _| {})
}

/// Every column's edge: each L4 variant, flag sets, endpoints with and
/// without workloads (kind or not, several), services with and without
/// a name, policies in all four lists with and without a namespace,
/// interfaces, socket fields, absent time, the empty flow.
fn edge_cases() -> Vec<Flow> {
    let ep = |ns: &str, pod: &str, workloads: Vec<Workload>| Endpoint {
        id: 7,
        identity: 4242,
        cluster_name: "c1".into(),
        namespace: ns.into(),
        labels: vec![
            "k8s:app=x".into(),
            "k8s:io.kubernetes.pod.namespace=ns".into(),
        ],
        pod_name: pod.into(),
        workloads,
    };
    let wl = |name: &str, kind: &str| Workload {
        name: name.into(),
        kind: kind.into(),
    };
    let pol = |name: &str, ns: &str| Policy {
        name: name.into(),
        namespace: ns.into(),
        labels: vec!["a=b".into()],
        revision: 3,
        kind: "CiliumNetworkPolicy".into(),
    };
    let l4 = |p: layer4::Protocol| Some(Layer4 { protocol: Some(p) });
    let base = Flow {
        time: Some(Timestamp {
            seconds: 1_765_000_000,
            nanos: 5,
        }),
        uuid: "u-1".into(),
        node_name: "n1".into(),
        ..Flow::default()
    };
    let mut out = vec![Flow::default(), base.clone()];
    for p in [
        layer4::Protocol::Tcp(Tcp {
            source_port: 1,
            destination_port: 2,
            flags: None,
        }),
        layer4::Protocol::Tcp(Tcp {
            source_port: 3,
            destination_port: 4,
            flags: Some(TcpFlags::default()),
        }),
        layer4::Protocol::Tcp(Tcp {
            source_port: 65535,
            destination_port: 0,
            flags: Some(TcpFlags {
                fin: true,
                syn: true,
                rst: true,
                psh: true,
                ack: true,
                urg: true,
                ece: true,
                cwr: true,
                ns: true,
            }),
        }),
        layer4::Protocol::Udp(Udp {
            source_port: 53,
            destination_port: 5353,
        }),
        layer4::Protocol::Sctp(Sctp {
            source_port: 9,
            destination_port: 10,
        }),
        layer4::Protocol::IcmPv4(IcmPv4 { r#type: 8, code: 0 }),
        layer4::Protocol::IcmPv6(IcmPv6 {
            r#type: 128,
            code: 0,
        }),
        layer4::Protocol::Vrrp(Vrrp::default()),
        layer4::Protocol::Igmp(Igmp::default()),
    ] {
        out.push(Flow {
            l4: l4(p),
            ..base.clone()
        });
    }
    out.push(Flow {
        l4: Some(Layer4 { protocol: None }),
        ..base.clone()
    });
    out.push(Flow {
        time: None,
        verdict: 2,
        drop_reason: 133,
        drop_reason_desc: 133,
        event_type: Some(CiliumEventType {
            r#type: 5,
            sub_type: 0,
        }),
        policy_match_type: 3,
        is_reply: Some(BoolValue { value: true }),
        traffic_direction: 2,
        trace_observation_point: 101,
        r#type: 1,
        source: Some(ep(
            "default",
            "xwing",
            vec![wl("xwing", "Deployment"), wl("b", "")],
        )),
        destination: Some(ep("", "", vec![wl("plain", "")])),
        source_service: Some(Service {
            name: "svc".into(),
            namespace: "".into(),
        }),
        destination_service: Some(Service {
            name: "".into(),
            namespace: "ns".into(),
        }),
        source_names: vec!["a.example".into(), "b.example".into()],
        destination_names: vec!["c.example".into()],
        interface: Some(NetworkInterface {
            index: 3,
            name: "eth0".into(),
        }),
        summary: "TCP Flags: SYN".into(),
        sock_xlate_point: 2,
        socket_cookie: u64::MAX,
        ingress_allowed_by: vec![pol("allow-in", "default"), pol("global", "")],
        egress_allowed_by: vec![pol("allow-out", "prod")],
        ingress_denied_by: vec![pol("deny-in", "")],
        egress_denied_by: vec![pol("deny-out", "x"), pol("deny-out-2", "y")],
        ip: Some(proto::flow::Ip {
            source: "10.0.0.1".into(),
            destination: "".into(),
            ip_version: 2,
            source_xlated: "10.9.9.9".into(),
            encrypted: true,
        }),
        ..base.clone()
    });
    out.push(Flow {
        interface: Some(NetworkInterface::default()),
        source: Some(Endpoint::default()),
        is_reply: Some(BoolValue { value: false }),
        event_type: Some(CiliumEventType::default()),
        verdict: 99,
        drop_reason_desc: 9999,
        ..base.clone()
    });
    out.extend((0..50).map(|i| common::flow(i, 1_765_000_000)));
    out
}

/// The batch of `flows` through `push` (decoded) and through the scan of
/// each flow's encoding (`push_scanned`), whose `flow_pb` must be the
/// encoding.
fn both_ways(flows: &[Flow]) {
    let mut decoded = BatchBuilder::new();
    let mut scanned = BatchBuilder::new();
    let mut scan = FlowScan::new();
    for (i, f) in flows.iter().enumerate() {
        let pb = f.encode_to_vec();
        decoded.push(f);
        let s = scan
            .scan(&pb)
            .unwrap_or_else(|e| panic!("flow {i}: {e}: {f:?}"));
        scanned.push_scanned(&s);
    }
    let (a, b) = (decoded.finish(), scanned.finish());
    for (c, field) in a.schema().fields().iter().enumerate() {
        assert_eq!(
            a.column(c),
            b.column(c),
            "column {} differs between append(&Flow) and the scan",
            field.name()
        );
    }
    assert_eq!(a, b);
}

#[test]
fn scanned_columns_equal_decoded_columns_for_every_fixture() {
    both_ways(&fixtures());
}

#[test]
fn scanned_columns_equal_decoded_columns_for_the_synthetic_mix() {
    both_ways(&synthetic(20_000));
}

#[test]
fn scanned_columns_equal_decoded_columns_for_edge_cases() {
    both_ways(&edge_cases());
}

fn writer(dir: &std::path::Path, verify: bool) -> (Arc<dyn Storage>, ArchiveWriter) {
    writer_with(dir, verify, true)
}

fn writer_with(
    dir: &std::path::Path,
    verify: bool,
    encoder_thread: bool,
) -> (Arc<dyn Storage>, ArchiveWriter) {
    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir).unwrap());
    let w = ArchiveWriter::new(
        storage.clone(),
        WriterOptions {
            file_rows: 3000,
            row_group_rows: 700,
            verify_flows: verify,
            encoder_thread,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    (storage, w)
}

/// Every data file of an archive, by name without the writer's pid.
fn files(storage: &Arc<dyn Storage>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = storage
        .list("")
        .unwrap()
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .map(|p| {
            let data = storage.get(&p).unwrap().unwrap();
            let name = p.rsplit_once('/').unwrap().0.to_owned();
            (name, data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn archives_from_bytes_and_from_flows_are_identical() {
    let mut flows = fixtures();
    flows.extend(synthetic(6000));
    flows.extend(edge_cases());
    let t0 = 1_765_000_000i128 * 1_000_000_000;
    for (i, f) in flows.iter_mut().enumerate() {
        // Over three hours: three partitions, several files each.
        f.time = Some(Timestamp::from_unix_nanos(t0 + i as i128 * 1_500_000_000));
    }
    for verify in [true, false] {
        let a = test_support::TempDir::new("arw-enc-a-");
        let b = test_support::TempDir::new("arw-enc-b-");
        // A: from decoded flows, encoded inline; B: from bytes, encoded on
        // the encoder thread (then the other way round).
        let (sa, mut wa) = writer_with(&a.path, verify, !verify);
        let (sb, mut wb) = writer_with(&b.path, verify, verify);
        for f in &flows {
            assert!(wa.append(f).unwrap());
            assert!(wb.append_encoded(&f.encode_to_vec()).unwrap());
        }
        let (ra, rb) = (wa.finish().unwrap(), wb.finish().unwrap());
        assert_eq!((ra.rows, ra.files, ra.bytes), (rb.rows, rb.files, rb.bytes));
        assert!(ra.files >= 3, "{ra:?}");
        let (fa, fb) = (files(&sa), files(&sb));
        assert_eq!(fa.len(), fb.len());
        for ((na, da), (nb, db)) in fa.iter().zip(&fb) {
            assert_eq!(na, nb);
            assert!(da == db, "{na}: the files differ");
        }
        assert_eq!(
            archiver::writer::ArchiveState::load(sa.as_ref()).unwrap(),
            archiver::writer::ArchiveState::load(sb.as_ref()).unwrap()
        );
        // And the archive reads back the flows sent.
        let mut back = common::all(&sb);
        let mut sent = flows.clone();
        let key = |f: &Flow| (f.time, f.encode_to_vec());
        back.sort_by_key(key);
        sent.sort_by_key(key);
        assert_eq!(back, sent);
    }
}

#[test]
fn merged_occurrences_fall_back_to_prost_and_keep_the_bytes() {
    let flows = edge_cases();
    let mut scan = FlowScan::new();
    let mut n = 0;
    for (i, a) in flows.iter().enumerate() {
        let b = &flows[(i * 7 + 3) % flows.len()];
        // Two encodings one after the other are one message: prost merges
        // them (message fields merged, scalars and strings replaced,
        // repeated fields concatenated).
        let mut pb = a.encode_to_vec();
        pb.extend(b.encode_to_vec());
        let merged = Flow::decode(pb.as_slice()).unwrap();
        let mut want = BatchBuilder::new();
        want.push_decoded(&merged, &pb);
        let mut got = BatchBuilder::new();
        match scan.scan(&pb) {
            Ok(s) => got.push_scanned(&s),
            Err(Scan::Irregular(_)) => {
                n += 1;
                got.push_decoded(&merged, &pb)
            }
            Err(e) => panic!("flows {i}: {e}"),
        }
        assert_eq!(want.finish(), got.finish(), "flows {i}");
        // Through the writer.
        let d = test_support::TempDir::new("arw-enc-m-");
        let (s, mut w) = writer(&d.path, true);
        assert!(w.append_encoded(&pb).unwrap());
        w.finish().unwrap();
        let back = common::all(&s);
        assert_eq!(back, vec![merged]);
    }
    assert!(n > 10, "the merges take the fallback ({n})");
}

/// A deterministic byte-mutation run: wherever prost decodes the mutated
/// bytes, the scan gives prost's columns (or leaves the flow to prost);
/// where prost refuses them, the writer refuses them too and appends
/// nothing.
#[test]
fn mutated_bytes_get_prost_columns_or_are_refused() {
    let mut flows = fixtures();
    flows.extend(edge_cases());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let d = test_support::TempDir::new("arw-enc-x-");
    let (_s, mut w) = writer(&d.path, true);
    let mut scan = FlowScan::new();
    let (mut accepted, mut refused, mut unverified) = (0, 0, 0);
    for round in 0..8_000 {
        let f = &flows[next() as usize % flows.len()];
        let mut pb = f.encode_to_vec();
        if pb.is_empty() {
            continue;
        }
        for _ in 0..1 + next() % 3 {
            let at = next() as usize % pb.len();
            match next() % 4 {
                0 => pb[at] = next() as u8,
                1 => pb[at] ^= 1 << (next() % 8),
                2 => pb.truncate(at),
                _ => pb.insert(at, next() as u8),
            }
            if pb.is_empty() {
                break;
            }
        }
        // Rows committed or pending (a mutated time may change the file).
        let rows = |w: &ArchiveWriter| {
            let s = w.stats();
            s.rows + s.pending_rows
        };
        let before = rows(&w);
        match Flow::decode(pb.as_slice()) {
            Ok(decoded) => {
                accepted += 1;
                let mut want = BatchBuilder::new();
                want.push_decoded(&decoded, &pb);
                let mut got = BatchBuilder::new();
                match scan.scan(&pb) {
                    Ok(s) => got.push_scanned(&s),
                    Err(Scan::Irregular(_)) => got.push_decoded(&decoded, &pb),
                    Err(e) => panic!("round {round}: prost decodes, the scan says {e}"),
                }
                assert_eq!(want.finish(), got.finish(), "round {round}");
                assert_eq!(
                    w.append_encoded_unless(&pb, |_, _| false).unwrap(),
                    Encoded::Appended(decoded.time)
                );
                assert_eq!(rows(&w), before + 1);
            }
            Err(_) => {
                refused += 1;
                if scan.scan(&pb).is_ok() {
                    unverified += 1;
                }
                assert!(matches!(w.append_encoded(&pb), Err(WriteError::Flow(_))));
                assert_eq!(rows(&w), before, "round {round}");
            }
        }
    }
    w.finish().unwrap();
    assert!(accepted > 1000 && refused > 1000, "{accepted} / {refused}");
    // Bytes only prost's full decode refuses exist (malformed inside a part
    // no column reads): what verify_flows is for.
    assert!(unverified > 0, "{unverified}");
}

#[test]
fn skipped_flows_are_not_appended() {
    let d = test_support::TempDir::new("arw-enc-s-");
    let (_s, mut w) = writer(&d.path, false);
    let flows: Vec<Flow> = (0..10).map(|i| common::flow(i, 1_765_000_000)).collect();
    for f in &flows {
        let pb = f.encode_to_vec();
        let res = w
            .append_encoded_unless(&pb, |t, uuid| {
                assert_eq!((t, uuid), (f.time, f.uuid.as_str()));
                uuid.ends_with('3')
            })
            .unwrap();
        let want = if f.uuid.ends_with('3') {
            Encoded::Skipped
        } else {
            Encoded::Appended(f.time)
        };
        assert_eq!(res, want);
    }
    assert_eq!(w.finish().unwrap().rows, 9);
}

#[test]
fn every_compression_reads_back() {
    use archiver::writer::FileCompression;
    let flows: Vec<Flow> = synthetic(3000)
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f.time = Some(Timestamp::from_unix_nanos(
                1_765_000_000i128 * 1_000_000_000 + i as i128 * 1_000_000,
            ));
            f
        })
        .collect();
    for c in [
        FileCompression::Zstd(1),
        FileCompression::Zstd(9),
        FileCompression::Zstd(-1),
        FileCompression::Zstd(-100),
        FileCompression::Snappy,
        FileCompression::Uncompressed,
    ] {
        let d = test_support::TempDir::new("arw-enc-c-");
        let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(&d.path).unwrap());
        let mut w = ArchiveWriter::new(
            storage.clone(),
            WriterOptions {
                compression: c,
                ..WriterOptions::default()
            },
        )
        .unwrap();
        for f in &flows {
            w.append_encoded(&f.encode_to_vec()).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(common::all(&storage), flows, "{c}");
    }
}
