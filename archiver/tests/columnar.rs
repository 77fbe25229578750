//! The columnar aggregation (`archiver::columnar`) gives what grouping the
//! decoded flows gives, for many field sets, filters, windows and limits;
//! and the archive read path survives bad files and symbolic links.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use archiver::columnar;
use archiver::read::{Archive, Query};
use archiver::storage::{LocalDir, Storage};
use proto::flow::{Flow, FlowFilter, Verdict};
use proto::wkt::Timestamp;
use serde_json::Value;

const BASE: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z

/// Synthetic flows over three hours, several per timestamp (ties), with
/// some flows stripped of fields (absent endpoints, L4, is_reply).
fn flows(n: usize) -> Vec<Flow> {
    common::synthetic(7, n, |i, f| {
        f.time = Some(Timestamp {
            seconds: BASE + i * 10_800 / n as i64,
            nanos: ((i % 3) * 1000) as i32,
        });
        match i % 17 {
            0 => f.source = None,
            1 => f.l4 = None,
            2 => f.is_reply = None,
            3 => f.node_name = format!("node-{}", i % 3),
            _ => {}
        }
    })
}

fn archive(dir: &std::path::Path, flows: &[Flow]) -> Archive {
    common::write_archive(dir, flows, 250, 40)
}

type Groups = BTreeMap<String, (u64, Option<Timestamp>, Option<Timestamp>)>;

/// The decoding path: every selected flow decoded, its JSON read at each
/// path (as `hubble observe --aggregate-by` does).
fn decoded(a: &Archive, q: &Query, paths: &[&str]) -> Groups {
    let (flows, _) = a.query_decoded(q).unwrap();
    if q.number.is_some() {
        // `--last N` chosen from the columns: the same flows.
        assert_eq!(a.query(q).unwrap().0, flows, "{q:?}");
    }
    let mut out = Groups::new();
    for f in flows {
        let json = serde_json::to_value(&f).unwrap();
        let values: Vec<Value> = paths
            .iter()
            .map(|p| {
                p.split('.')
                    .try_fold(&json, |v, k| v.get(k))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        let e = out
            .entry(serde_json::to_string(&values).unwrap())
            .or_insert((0, None, None));
        e.0 += 1;
        e.1 = Some(e.1.map_or(f.time.unwrap(), |t| t.min(f.time.unwrap())));
        e.2 = Some(e.2.map_or(f.time.unwrap(), |t| t.max(f.time.unwrap())));
    }
    out
}

fn columns(a: &Archive, q: &Query, paths: &[&str]) -> Groups {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let plan = columnar::plan(q, &paths).unwrap();
    let (groups, stats) = a.aggregate(q, &plan).unwrap();
    assert!(stats.unreadable.is_empty());
    let mut out = Groups::new();
    for g in groups {
        let e = out
            .entry(serde_json::to_string(&g.values).unwrap())
            .or_insert((0, None, None));
        // Distinct column values may be one JSON value (0 and absent).
        e.0 += g.count;
        e.1 = e.1.min(g.first).or(g.first);
        e.2 = e.2.max(g.last);
    }
    out
}

fn ts(s: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: BASE + s,
        nanos: 0,
    })
}

#[test]
fn columns_group_like_decoded_flows() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), &flows(1500));
    let field_sets: &[&[&str]] = &[
        &["verdict"],
        &["source.namespace", "source.pod_name", "verdict"],
        &[
            "source.namespace",
            "source.pod_name",
            "destination.pod_name",
            "l4.TCP.destination_port",
            "verdict",
        ],
        &["l4.UDP.destination_port", "l4.TCP.source_port", "Type"],
        &["source.identity", "destination.identity", "node_name"],
        &["drop_reason_desc", "traffic_direction", "is_reply"],
        &["event_type.type", "event_type.sub_type", "IP.ipVersion"],
        &["IP.source", "IP.destination", "l4.SCTP.destination_port"],
    ];
    let dropped = FlowFilter {
        verdict: vec![Verdict::Dropped as i32],
        ..Default::default()
    };
    let filters: Vec<(Vec<FlowFilter>, Vec<FlowFilter>)> = vec![
        (vec![], vec![]),
        (vec![dropped.clone()], vec![]),
        (vec![], vec![dropped]),
        (
            vec![FlowFilter {
                source_pod: vec!["default/".into()],
                ..Default::default()
            }],
            vec![FlowFilter {
                destination_port: vec!["53".into()],
                ..Default::default()
            }],
        ),
        (
            vec![FlowFilter {
                protocol: vec!["tcp".into(), "icmp".into()],
                reply: vec![false],
                ..Default::default()
            }],
            vec![],
        ),
        (
            vec![
                FlowFilter {
                    event_type: vec![proto::flow::EventTypeFilter {
                        r#type: 4,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                FlowFilter {
                    node_name: vec!["node-*".into()],
                    ..Default::default()
                },
                FlowFilter {
                    source_identity: vec![1],
                    traffic_direction: vec![1],
                    ..Default::default()
                },
            ],
            vec![],
        ),
    ];
    let windows = [
        (None, None, None, false),
        (ts(1800), ts(7200), None, false),
        (None, None, Some(120), false),
        (None, None, Some(120), true),
        (ts(3600), None, Some(3), false),
    ];
    let mut nonempty = 0;
    for paths in field_sets {
        for (wl, bl) in &filters {
            for (since, until, number, first) in windows {
                let q = Query {
                    since,
                    until,
                    whitelist: wl.clone(),
                    blacklist: bl.clone(),
                    number,
                    first,
                };
                let want = decoded(&a, &q, paths);
                nonempty += usize::from(!want.is_empty());
                assert_eq!(columns(&a, &q, paths), want, "{paths:?} {q:?}");
            }
        }
    }
    assert!(nonempty > 200, "{nonempty} non-empty cases");
}

/// The history query without a limit (late-materialised, row groups over
/// the cores) returns exactly the decoding path's flows, in its order
/// (ties included), for filters with and without a verdict, windows that
/// cut row groups, and an L7 filter the columns cannot answer.
#[test]
fn query_without_limit_gives_the_decoded_flows() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), &flows(1500));
    let verdict = |v: Verdict| FlowFilter {
        verdict: vec![v as i32],
        ..Default::default()
    };
    let whitelists = [
        vec![],
        vec![verdict(Verdict::Dropped)],
        vec![verdict(Verdict::Forwarded), verdict(Verdict::Dropped)],
        vec![
            verdict(Verdict::Dropped),
            FlowFilter {
                source_pod: vec!["default/".into()],
                ..Default::default()
            },
        ],
        vec![FlowFilter {
            protocol: vec!["dns".into()],
            ..Default::default()
        }],
    ];
    let mut nonempty = 0;
    for wl in &whitelists {
        for bl in [vec![], vec![verdict(Verdict::Forwarded)]] {
            for (since, until) in [
                (None, None),
                (ts(1800), ts(7200)),
                (ts(1801), None),
                (None, ts(3599)),
            ] {
                let q = Query {
                    since,
                    until,
                    whitelist: wl.clone(),
                    blacklist: bl.clone(),
                    ..Default::default()
                };
                let (got, stats) = a.query(&q).unwrap();
                let (want, want_stats) = a.query_decoded(&q).unwrap();
                assert_eq!(got, want, "{q:?}");
                assert!(stats.unreadable.is_empty(), "{:?}", stats.unreadable);
                assert_eq!(
                    (
                        stats.files_read,
                        stats.row_groups_skipped,
                        stats.rows_decoded
                    ),
                    (
                        want_stats.files_read,
                        want_stats.row_groups_skipped,
                        want_stats.rows_decoded
                    ),
                    "{q:?}"
                );
                nonempty += usize::from(!got.is_empty());
            }
        }
    }
    assert!(nonempty > 30, "{nonempty} non-empty cases");
}

/// Files written before the writer's encodings changed (dictionary and
/// statistics on every column, dictionary-encoded `time`, zstd level 3:
/// the parquet defaults) are read as before, by every path.
#[test]
fn files_of_the_earlier_layout_are_read() {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let dir = tempfile::tempdir().unwrap();
    let all = flows(600);
    let storage = Arc::new(LocalDir::new(dir.path()).unwrap());
    // One file per hour partition, as the writer of then laid them out.
    let mut by_part: BTreeMap<String, Vec<&Flow>> = BTreeMap::new();
    for f in &all {
        by_part
            .entry(archiver::writer::partition_of(f.time))
            .or_default()
            .push(f);
    }
    for (part, fs) in &by_part {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
            .set_max_row_group_row_count(Some(64))
            .build();
        let mut w =
            ArrowWriter::try_new(Vec::new(), archiver::schema::schema(), Some(props)).unwrap();
        let mut b = archiver::schema::BatchBuilder::new();
        for f in fs {
            b.push(f);
        }
        w.write(&b.finish()).unwrap();
        storage
            .put(
                &format!("{part}/part-old.parquet"),
                &w.into_inner().unwrap(),
            )
            .unwrap();
    }
    let a = Archive::new(storage);
    let dropped = FlowFilter {
        verdict: vec![Verdict::Dropped as i32],
        ..Default::default()
    };
    let q = Query {
        since: ts(1800),
        whitelist: vec![dropped],
        ..Default::default()
    };
    let (got, stats) = a.query(&q).unwrap();
    assert!(stats.unreadable.is_empty(), "{:?}", stats.unreadable);
    let since = ts(1800).unwrap();
    let want: Vec<Flow> = all
        .iter()
        .filter(|f| f.time.is_some_and(|t| t >= since) && f.verdict == Verdict::Dropped as i32)
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert_eq!(a.query_decoded(&q).unwrap().0, want);
    let last = Query {
        number: Some(5),
        ..q.clone()
    };
    assert_eq!(a.query(&last).unwrap().0, want[want.len() - 5..]);
}

#[test]
fn paths_and_filters_without_columns_are_refused() {
    let q = Query::default();
    let e = columnar::plan(&q, &["l7.type".into()]).unwrap_err();
    assert!(e.contains("l7.type"), "{e}");
    let q = Query {
        whitelist: vec![FlowFilter {
            http_path: vec!["/v1".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(columnar::plan(&q, &["verdict".into()]).is_err());
    let q = Query {
        whitelist: vec![FlowFilter {
            protocol: vec!["dns".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(columnar::plan(&q, &["verdict".into()]).is_err());
}

/// A truncated and an empty file are skipped and named by every reader;
/// the archiver at start moves them aside and records their hours as gaps.
#[test]
fn corrupt_files_are_skipped_reported_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let fl = flows(2000);
    let a = archive(dir.path(), &fl);
    let files = a.files().unwrap();
    assert!(files.len() >= 3, "{files:?}");
    let newest = files.last().unwrap().clone();
    let older = files[0].clone();
    let p = dir.path().join(&newest);
    let len = std::fs::metadata(&p).unwrap().len();
    let rows_in = |path: &str| {
        let storage = LocalDir::new(dir.path()).unwrap();
        archiver::writer::read_footer(&storage, path)
            .unwrap()
            .unwrap()
            .file_metadata()
            .num_rows() as usize
    };
    let lost = rows_in(&newest) + rows_in(&older);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(dir.path().join(&older), b"").unwrap();

    let q = Query {
        number: None,
        ..Default::default()
    };
    let (got, stats) = a.query(&q).unwrap();
    assert_eq!(got.len(), fl.len() - lost);
    assert_eq!(stats.unreadable.len(), 2, "{:?}", stats.unreadable);
    assert!(stats.unreadable.iter().any(|u| u.starts_with(&newest)));
    assert!(stats.unreadable.iter().any(|u| u.starts_with(&older)));
    let plan = columnar::plan(&q, &["verdict".into()]).unwrap();
    let (groups, stats) = a.aggregate(&q, &plan).unwrap();
    assert_eq!(
        groups.iter().map(|g| g.count).sum::<u64>() as usize,
        fl.len() - lost
    );
    assert_eq!(stats.unreadable.len(), 2);
    let last = Query {
        number: Some(5),
        ..Default::default()
    };
    assert_eq!(a.query(&last).unwrap().0.len(), 5);

    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.path()).unwrap());
    let st = archiver::writer::ArchiveState::load(storage.as_ref()).unwrap();
    assert_eq!(st.unreadable.len(), 2, "{:?}", st.unreadable);
    let gaps = archiver::writer::quarantine_unreadable(storage.as_ref()).unwrap();
    assert_eq!(gaps.len(), 2);
    assert!(dir.path().join(format!("{newest}.corrupt")).exists());
    assert!(!p.exists());
    let recorded = archiver::writer::gaps(storage.as_ref()).unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|g| g.from.is_some() && g.to.is_some()));
    assert!(recorded.iter().any(|g| g.reason.contains(&newest)));
    assert!(
        archiver::writer::ArchiveState::load(storage.as_ref())
            .unwrap()
            .unreadable
            .is_empty()
    );
    let (got, stats) = a.query(&q).unwrap();
    assert_eq!(got.len(), fl.len() - lost);
    assert!(stats.unreadable.is_empty());
}

/// Links back to the root, into each other and out of the archive are not
/// followed; each is named in a warning, and the counts are those of the
/// real files.
#[test]
fn symlinks_do_not_loop_or_leave_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let fl = flows(1500);
    let a = archive(dir.path(), &fl);
    let files = a.files().unwrap();
    let root = dir.path();
    let day = root.join(files[0].split('/').next().unwrap());
    std::os::unix::fs::symlink(root, day.join("loop")).unwrap();
    std::fs::create_dir(root.join("a")).unwrap();
    std::fs::create_dir(root.join("b")).unwrap();
    std::os::unix::fs::symlink(root.join("b"), root.join("a/to-b")).unwrap();
    std::os::unix::fs::symlink(root.join("a"), root.join("b/to-a")).unwrap();
    std::fs::copy(root.join(&files[0]), outside.path().join("x.parquet")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.parquet"), root.join("a/out.parquet"))
        .unwrap();

    assert_eq!(a.files().unwrap(), files);
    let (got, stats) = a
        .query(&Query {
            number: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(got.len(), fl.len());
    let w = stats.warnings.join("\n");
    for link in ["loop", "a/to-b", "b/to-a", "a/out.parquet"] {
        assert!(w.contains(link), "{link} not in {w}");
    }
    let storage = LocalDir::new(root).unwrap();
    let st = archiver::writer::ArchiveState::load(&storage).unwrap();
    assert_eq!(st.files as usize, files.len());

    // /proc/self: links everywhere, and no archive; ends, finds nothing.
    let proc_self = Archive::open("/proc/self").unwrap();
    assert!(proc_self.files().unwrap().is_empty());
}

/// Unmounts on drop, also on failure.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn run(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A read-only directory (a read-only bind mount: root ignores permission
/// bits) is refused when the archiver starts, before it follows anything.
#[test]
fn read_only_dir_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let (ok, _, err) = run(std::process::Command::new("mount")
        .args(["--bind"])
        .arg(&ro)
        .arg(&ro));
    assert!(ok, "mount --bind: {err}");
    let _mount = Mount(ro.clone());
    let (ok, _, err) = run(std::process::Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&ro));
    assert!(ok, "remount ro: {err}");

    let storage = LocalDir::new(&ro).unwrap();
    let e = archiver::writer::check_writable(&storage)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot write to the archive"), "{e}");
    assert!(e.contains(&ro.display().to_string()), "{e}");
    // The binary: an error at start, though no source is reachable.
    let (ok, _, err) = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
            .args(["--server", "127.0.0.1:9", "--dir"])
            .arg(&ro),
    );
    assert!(!ok);
    assert!(err.contains("cannot write to the archive"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// `flow-archiver status` names an unreadable file and counts it.
#[test]
fn status_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), &flows(800));
    let files = a.files().unwrap();
    std::fs::write(dir.path().join(&files[1]), b"PAR1 not really").unwrap();
    let (ok, out, err) = run(
        std::process::Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
            .args(["status", "--dir"])
            .arg(dir.path()),
    );
    assert!(ok, "{err}");
    assert!(out.contains("unreadable: 1"), "{out}");
    assert!(out.contains(&files[1]), "{out}");
    assert!(err.contains(&files[1]), "{err}");
}

/// `status` and `query` only read: a file in the making (a temporary, here
/// one whose writer is gone) is left to the archiver's own start, and a
/// missing directory is an error, not created. Before, `status` cleared
/// temporaries and so could delete a running archiver's file under its
/// rename.
#[test]
fn status_and_query_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path(), &flows(100));
    let tmp = dir.path().join("_archive/.write-probe.999999999.tmp");
    std::fs::write(&tmp, b"partial").unwrap();
    for cmd in ["status", "query"] {
        let (ok, _, err) = run(
            std::process::Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
                .args([cmd, "--dir"])
                .arg(dir.path()),
        );
        assert!(ok, "{cmd}: {err}");
        assert!(tmp.exists(), "{cmd} removed a temporary");
        let missing = dir.path().join("nope");
        let (ok, _, err) = run(
            std::process::Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
                .args([cmd, "--dir"])
                .arg(&missing),
        );
        assert!(!ok && err.contains("not a directory"), "{cmd}: {err}");
        assert!(!missing.exists(), "{cmd} created the directory");
    }
}

/// The resume point is in every file's footer: with `state.json` lost (a
/// crash between a file's commit and the cache's), the state loaded from
/// the footers alone still knows the newest flow and its uuids.
#[test]
fn resume_point_survives_a_lost_state_cache() {
    let dir = tempfile::tempdir().unwrap();
    let fs = flows(500);
    archive(dir.path(), &fs);
    let storage = LocalDir::new(dir.path()).unwrap();
    let cached = archiver::writer::ArchiveState::load(&storage).unwrap();
    std::fs::remove_file(dir.path().join(archiver::writer::STATE_PATH)).unwrap();
    let st = archiver::writer::ArchiveState::load(&storage).unwrap();
    let newest = fs.iter().filter_map(|f| f.time).max();
    assert_eq!(st.last_time, newest);
    let mut want: Vec<String> = fs
        .iter()
        .filter(|f| f.time == newest)
        .map(|f| f.uuid.clone())
        .collect();
    let mut got = st.last_uuids.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!((st.last_time, st.rows), (cached.last_time, cached.rows));
    assert!(fs.iter().all(|f| st.already_archived(f)));
}
