//! `Archive::query_rendered` (flows rendered on the reading threads and
//! written while later row groups are read) writes exactly what rendering
//! `Archive::query_decoded`'s flows one by one writes: over archives whose
//! files and row groups are in time order (written early, chunk by chunk),
//! whose row groups overlap in time (held and merged), with ties, flows
//! without a time, unreadable files, limits, and a render error.

mod common;

use archiver::read::{Archive, Query, ReadError, Render};
use proto::flow::{Flow, FlowFilter, Verdict};
use proto::wkt::Timestamp;

const BASE: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z

/// Synthetic flows, `order(i)` giving each one's second offset from
/// [`BASE`] (several per second: ties).
fn flows(n: usize, order: impl Fn(i64) -> i64) -> Vec<Flow> {
    common::synthetic(11, n, |i, f| {
        f.time = Some(Timestamp {
            seconds: BASE + order(i),
            nanos: ((i % 4) * 250) as i32,
        });
    })
}

fn archive(dir: &std::path::Path, flows: &[Flow]) -> Archive {
    common::write_archive(dir, flows, 300, 50)
}

/// A line per flow naming it (its uuid and time), so any reordering, loss
/// or duplicate shows.
struct Lines;

impl Render for Lines {
    fn render(&mut self, f: Flow, out: &mut Vec<u8>) -> std::io::Result<()> {
        let t = f.time.unwrap_or_default();
        out.extend_from_slice(format!("{} {}.{:09}\n", f.uuid, t.seconds, t.nanos).as_bytes());
        Ok(())
    }
}

/// What rendering the reference path's flows one by one writes.
fn reference(a: &Archive, q: &Query) -> Vec<u8> {
    let (flows, _) = a.query_decoded(q).unwrap();
    let mut out = Vec::new();
    for f in flows {
        Lines.render(f, &mut out).unwrap();
    }
    out
}

fn rendered(a: &Archive, q: &Query) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = a.query_rendered(q, || Lines, &mut out).unwrap();
    let (_, want) = a.query_decoded(q).unwrap();
    assert_eq!(stats.unreadable, want.unreadable, "{q:?}");
    if q.number.is_none() {
        // (With a limit the columns choose the rows, newest files first:
        // fewer files are read.)
        assert_eq!(stats.files_read, want.files_read, "{q:?}");
        assert_eq!(stats.rows_decoded, want.rows_decoded, "{q:?}");
    }
    out
}

fn ts(s: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: BASE + s,
        nanos: 0,
    })
}

fn queries() -> Vec<Query> {
    let dropped = FlowFilter {
        verdict: vec![Verdict::Dropped as i32],
        ..Default::default()
    };
    let mut qs = Vec::new();
    for whitelist in [vec![], vec![dropped]] {
        for (since, until) in [(None, None), (ts(600), ts(2400)), (ts(1), None)] {
            for number in [None, Some(7)] {
                for first in [false, true] {
                    qs.push(Query {
                        since,
                        until,
                        whitelist: whitelist.clone(),
                        number,
                        first,
                        ..Default::default()
                    });
                }
            }
        }
    }
    qs
}

#[test]
fn rendered_in_time_order_equals_the_decoding_path() {
    let dir = tempfile::tempdir().unwrap();
    // An hour of flows, four per second: 12 files, 72 row groups.
    let a = archive(dir.path(), &flows(3600, |i| i / 4 * 4));
    for q in queries() {
        assert_eq!(rendered(&a, &q), reference(&a, &q), "{q:?}");
    }
}

#[test]
fn rendered_with_overlapping_row_groups_equals_the_decoding_path() {
    let dir = tempfile::tempdir().unwrap();
    // Times jump back and forth within the hour: every row group overlaps
    // others, some only partly; ties across row groups and files.
    let a = archive(dir.path(), &flows(3000, |i| (i * 7919) % 3000 / 2 * 2));
    for q in queries() {
        let got = rendered(&a, &q);
        assert_eq!(got, reference(&a, &q), "{q:?}");
    }
    // A second run: the threads take the units in another interleaving.
    let q = Query::default();
    assert_eq!(rendered(&a, &q), reference(&a, &q));
}

#[test]
fn rendered_with_flows_without_time_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = flows(1500, |i| i);
    for f in all.iter_mut().skip(3).step_by(97) {
        f.time = None;
    }
    let a = archive(dir.path(), &all);
    // Corrupt one file in the middle: its flows are left out and it is
    // named, on both paths.
    let mut files = a.files().unwrap();
    files.sort();
    let victim = dir.path().join(&files[files.len() / 2]);
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    for q in [
        Query::default(),
        Query {
            since: ts(100),
            ..Default::default()
        },
    ] {
        let got = rendered(&a, &q);
        assert!(!got.is_empty());
        assert_eq!(got, reference(&a, &q), "{q:?}");
    }
    let mut out = Vec::new();
    let stats = a
        .query_rendered(&Query::default(), || Lines, &mut out)
        .unwrap();
    assert_eq!(stats.unreadable.len(), 1, "{:?}", stats.unreadable);
}

/// A flow that cannot be rendered stops the query with the render's error.
#[test]
fn a_render_error_stops_the_query() {
    struct Fails;
    impl Render for Fails {
        fn render(&mut self, f: Flow, out: &mut Vec<u8>) -> std::io::Result<()> {
            if f.uuid.ends_with('7') {
                return Err(std::io::Error::other("cannot render"));
            }
            Lines.render(f, out)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), &flows(1000, |i| i));
    let mut out = Vec::new();
    match a.query_rendered(&Query::default(), || Fails, &mut out) {
        Err(ReadError::Output(e)) => assert_eq!(e.to_string(), "cannot render"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}
