//! `hubble observe --archive DIR`: the fixture's flows written by the
//! archiver's writer, then queried with the same flags from the archive and
//! from a live server holding the same flows. Outputs must be identical.

mod common;

use std::sync::Arc;

use archiver::storage::LocalDir;
use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_exporter::replay::{self, ReplayEvent};

fn archive_fixture(dir: &std::path::Path) {
    let storage = Arc::new(LocalDir::new(dir).unwrap());
    let mut w = ArchiveWriter::new(
        storage,
        WriterOptions {
            file_rows: 5,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for ev in replay::load(&common::fixture()).unwrap().events {
        if let ReplayEvent::Flow(f) = ev {
            w.append(&f).unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn archive_answers_like_the_live_server() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let cases: &[&[&str]] = &[
        &["--all", "-o", "json"],
        &["--all", "-o", "json", "--verdict", "DROPPED"],
        &[
            "--all", "-o", "json", "--pod", "xwing", "--not", "--type", "drop",
        ],
        &[
            "--all",
            "-o",
            "json",
            "--since",
            "2024-05-01T10:00:03Z",
            "--until",
            "2024-05-01T10:00:09Z",
        ],
        &["--last", "3", "-o", "json", "--namespace", "default"],
        &["--first", "2", "-o", "json", "--protocol", "tcp"],
        &[
            "--all",
            "-o",
            "compact",
            "--time-format",
            "RFC3339Nano",
            "--to-port",
            "443",
        ],
        &[
            "--all",
            "-o",
            "json",
            "--from-label",
            "org=empire",
            "--to-fqdn",
            "*.com",
        ],
        // Grouped from the archive's flows as from the server's.
        &[
            "--all",
            "--aggregate-by",
            "source.namespace,destination.pod_name,verdict",
        ],
    ];
    for flags in cases {
        // The archive, like `--input-file` (and upstream's file input),
        // prints whole flows; the live server applies the default field
        // mask, so it is switched off for the comparison.
        let mut live = vec![
            "observe",
            "--server",
            server.addr.as_str(),
            "--use-default-field-masks=false",
        ];
        live.extend_from_slice(flags);
        let mut hist = vec!["observe", "--archive", archive.as_str()];
        hist.extend_from_slice(flags);
        let (a, b) = (common::run(&live), common::run(&hist));
        assert_eq!(a.code, 0, "{flags:?}: {}", a.stderr);
        assert_eq!(b.code, 0, "{flags:?}: {}", b.stderr);
        assert!(
            !a.stdout.is_empty() || flags.contains(&"--to-fqdn"),
            "{flags:?} selected nothing live"
        );
        assert_eq!(b.stdout, a.stdout, "{flags:?}");
    }
    let r = common::run(&["observe", "--archive", &archive, "--follow"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("--follow cannot be used with --archive"),
        "{}",
        r.stderr
    );
    let r = common::run(&["observe", "--archive", "/nonexistent/archive"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
}

/// Policy names survive the archive: `--print-policy-names` on archived
/// policy verdicts prints them as on live ones.
#[test]
fn archived_verdicts_keep_their_policy_names() {
    use proto::flow::{CiliumEventType, Flow, Policy, TrafficDirection, Verdict};
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalDir::new(dir.path()).unwrap());
    let mut w = ArchiveWriter::new(storage, WriterOptions::default()).unwrap();
    let policy = |name: &str| Policy {
        name: name.into(),
        namespace: "default".into(),
        kind: "CiliumNetworkPolicy".into(),
        revision: 3,
        ..Default::default()
    };
    let verdict = |v: Verdict, secs: i64| Flow {
        time: Some(proto::wkt::Timestamp::from_unix_nanos(
            (1_714_557_600 + secs) as i128 * 1_000_000_000,
        )),
        verdict: v as i32,
        event_type: Some(CiliumEventType {
            r#type: 5,
            sub_type: 0,
        }),
        traffic_direction: TrafficDirection::Ingress as i32,
        node_name: "k8s1".into(),
        ..Default::default()
    };
    let mut allowed = verdict(Verdict::Forwarded, 1);
    allowed.ingress_allowed_by = vec![policy("rule1")];
    let mut denied = verdict(Verdict::Dropped, 2);
    denied.ingress_denied_by = vec![policy("deny-xwing-80")];
    let default_deny = verdict(Verdict::Dropped, 3);
    for f in [&allowed, &denied, &default_deny] {
        w.append(f).unwrap();
    }
    w.finish().unwrap();
    let archive = dir.path().to_str().unwrap();
    let r = common::run(&[
        "observe",
        "--archive",
        archive,
        "--all",
        "--print-policy-names",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].contains("INGRESS ALLOWED BY rule1 (CiliumNetworkPolicy)"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].contains("INGRESS DENIED BY deny-xwing-80 (CiliumNetworkPolicy)"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].contains("INGRESS DENIED") && !lines[2].contains(" BY "),
        "{}",
        r.stdout
    );
    let r = common::run(&["observe", "--archive", archive, "--all", "-o", "json"]);
    assert!(
        r.stdout.contains(r#""ingress_denied_by":[{"#),
        "{}",
        r.stdout
    );
}

/// `--aggregate-by` over an archive is grouped from the Parquet columns
/// (no "decoding" line under `-D`) and prints exactly what the live server's
/// decoded flows give: several field sets, filters, `--top`, table and JSON.
/// A path without a column falls back to decoding, with the same result.
#[test]
fn archive_aggregation_from_columns_matches_decoded_flows() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let by = |p: &'static str| ["--aggregate-by", p];
    let mut cases: Vec<(Vec<&str>, bool)> = Vec::new();
    for fields in [
        "source.namespace,source.pod_name,destination.pod_name,l4.TCP.destination_port,verdict",
        "verdict,drop_reason_desc",
        "Type,node_name,traffic_direction,is_reply",
        "source.identity,destination.identity,l4.UDP.destination_port",
        "IP.source,IP.destination,IP.ipVersion,event_type.type,event_type.sub_type",
    ] {
        for filter in [
            &[][..],
            &["--verdict", "DROPPED"][..],
            &["--namespace", "default", "--not", "--to-port", "53"][..],
            &["--pod", "xwing"][..],
            &["--protocol", "tcp", "--type", "trace"][..],
            &["--from-identity", "5", "--node-name", "replay"][..],
            &[
                "--since",
                "2024-05-01T10:00:03Z",
                "--until",
                "2024-05-01T10:00:09Z",
            ][..],
        ] {
            let mut f = vec!["--all"];
            f.extend(by(fields));
            f.extend_from_slice(filter);
            cases.push((f, true));
        }
    }
    cases.push((
        vec![
            "--last",
            "4",
            "--aggregate-by",
            "verdict,source.pod_name",
            "-o",
            "json",
        ],
        true,
    ));
    cases.push((
        vec![
            "--all",
            "--aggregate-by",
            "source.pod_name",
            "--top",
            "2",
            "-o",
            "json",
        ],
        true,
    ));
    cases.push((
        vec![
            "--first",
            "5",
            "--aggregate-by",
            "destination.pod_name",
            "--top",
            "1",
        ],
        true,
    ));
    // No column: decoded.
    cases.push((vec!["--all", "--aggregate-by", "l7.type,verdict"], false));
    cases.push((
        vec!["--all", "--aggregate-by", "verdict", "--to-fqdn", "*.com"],
        false,
    ));
    let mut nonempty = 0;
    for (flags, columnar) in &cases {
        let mut live = vec![
            "observe",
            "--server",
            server.addr.as_str(),
            "--use-default-field-masks=false",
        ];
        live.extend_from_slice(flags);
        let mut hist = vec!["observe", "-D", "--archive", archive.as_str()];
        hist.extend_from_slice(flags);
        let (a, b) = (common::run(&live), common::run(&hist));
        assert_eq!(a.code, 0, "{flags:?}: {}", a.stderr);
        assert_eq!(b.code, 0, "{flags:?}: {}", b.stderr);
        assert_eq!(b.stdout, a.stdout, "{flags:?}");
        nonempty += usize::from(a.stdout.lines().count() > 1);
        assert_eq!(
            !b.stderr.contains("aggregating by decoding each flow"),
            *columnar,
            "{flags:?}: {}",
            b.stderr
        );
    }
    assert!(
        nonempty > 30,
        "{nonempty} of {} cases grouped something",
        cases.len()
    );
}

/// A truncated and an empty file are skipped with a warning naming each
/// and a count; the newest flows in intact files are still printed. Links
/// looping back into the archive or `/proc/self` do not hang.
#[test]
fn archive_survives_corrupt_files_and_link_loops() {
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let all = common::run(&["observe", "--archive", &archive, "--all", "-o", "json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let files = archiver::read::Archive::open(&archive)
        .unwrap()
        .files()
        .unwrap();
    assert!(files.len() >= 3, "{files:?}");
    // The newest file truncated, the oldest emptied.
    let (newest, oldest) = (files[files.len() - 1].clone(), files[0].clone());
    let p = dir.path().join(&newest);
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(dir.path().join(&oldest), b"").unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();

    let rest = common::run(&["observe", "--archive", &archive, "--all", "-o", "json"]);
    assert_eq!(rest.code, 0, "{}", rest.stderr);
    assert!(rest.stdout.lines().count() < all.stdout.lines().count());
    for f in [&newest, &oldest] {
        let warning = format!("skipped unreadable archive file {f}");
        assert!(rest.stderr.contains(&warning), "{}", rest.stderr);
    }
    let count = "2 archive file(s) unreadable and skipped";
    assert!(rest.stderr.contains(count), "{}", rest.stderr);
    assert!(
        rest.stderr.contains("skipped symbolic link loop"),
        "{}",
        rest.stderr
    );
    // `--last 2`: the newest flows of the intact files.
    let r = common::run(&[
        "observe",
        "--archive",
        &archive,
        "--last",
        "2",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<&str> = rest.stdout.lines().rev().take(2).collect();
    let got: Vec<&str> = r.stdout.lines().rev().collect();
    assert_eq!(got, want);
    let warning = format!("skipped unreadable archive file {newest}");
    assert!(r.stderr.contains(&warning), "{}", r.stderr);
    let r = common::run(&[
        "observe",
        "--archive",
        &archive,
        "--all",
        "--aggregate-by",
        "verdict",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(count), "{}", r.stderr);

    let r = common::run(&["observe", "--archive", "/proc/self", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}
