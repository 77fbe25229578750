//! `hubble map` end to end on the exporter's twelve-flow fixture: the text
//! map; DOT that Graphviz's `dot` renders; Mermaid checked line by line;
//! the JSON shape; the same map from `--input-file`, a live server and an
//! archive; filter flags; `--follow` redrawing from a server, and refused
//! for the document formats and for archives.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use archiver::storage::LocalDir;
use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_exporter::replay::{self, ReplayEvent};
use serde_json::Value;

fn fixture() -> String {
    common::fixture().to_str().unwrap().to_owned()
}

fn map(args: &[&str]) -> common::Run {
    let f = fixture();
    let mut all = vec!["map", "--input-file", f.as_str()];
    all.extend_from_slice(args);
    let r = common::run(&all);
    assert_eq!(r.code, 0, "hubble {all:?}: {}", r.stderr);
    r
}

#[test]
fn text_lists_edges_largest_first() {
    let r = map(&[]);
    assert_eq!(
        r.stdout,
        "\
SOURCE               DESTINATION           FLOWS   FORWARDED   DROPPED   OTHER   PORTS           SERVICES
default/xwing        default/deathstar     3       1           2         0       80/TCP
default/tiefighter   default/deathstar     3       3           0         0       80/TCP,ICMPv4   default/deathstar
world                default/deathstar     1       0           1         0       22/TCP
default/tiefighter   world                 1       1           0         0       443/TCP
default/xwing        kube-system/coredns   1       1           0         0       53/UDP          kube-system/kube-dns
default/xwing        world                 1       1           0         0       443/TCP
host                 remote-node           1       1           0         0       ICMPv6
telecom/diameter-0   telecom/diameter-1    1       1           0         0       3868/SCTP

12 flows, 9 nodes, 8 edges by workload
"
    );
    assert_eq!(r.stderr, "");
    // Filter flags select the flows mapped, as in `observe`.
    let r = map(&["--verdict", "DROPPED", "--group-by", "namespace"]);
    assert!(
        r.stdout
            .ends_with("3 flows, 2 nodes, 2 edges by namespace\n"),
        "{}",
        r.stdout
    );
    // Focused on deathstar, its two largest edges (the count is of every
    // flow mapped).
    let r = map(&["--top", "2", "--focus", "default/deathstar"]);
    assert!(
        r.stdout
            .ends_with("12 flows, 3 nodes, 2 edges by workload\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn dot_renders_with_graphviz() {
    for group in ["workload", "namespace", "identity"] {
        let r = map(&["-o", "dot", "--group-by", group]);
        assert!(r.stdout.starts_with("digraph \"service map\" {\n"));
        let mut dot = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("graphviz's dot (bootstrap.sh installs it)");
        dot.stdin
            .take()
            .unwrap()
            .write_all(r.stdout.as_bytes())
            .unwrap();
        let out = dot.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dot -Tsvg failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            r.stdout
        );
        let svg = String::from_utf8(out.stdout).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        // Every edge is drawn: one SVG group per edge.
        let edges = r.stdout.lines().filter(|l| l.contains(" -> ")).count();
        assert_eq!(svg.matches("class=\"edge\"").count(), edges, "{svg}");
        if group == "workload" {
            assert_eq!(edges, 8);
            assert!(svg.contains("default/xwing"), "{svg}");
        }
    }
}

#[test]
fn mermaid_is_a_flowchart_of_the_same_graph() {
    let r = map(&["-o", "mermaid"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "flowchart LR");
    let node = regex::Regex::new(r#"^    n(\d+)(\["[^"]*"\]|\("[^"]*"\))$"#).unwrap();
    let edge = regex::Regex::new(r#"^    n(\d+) -->\|"[^"]*"\| n(\d+)$"#).unwrap();
    let style =
        regex::Regex::new(r"^    linkStyle (\d+) stroke:#[0-9a-f]{6},color:#[0-9a-f]{6}$").unwrap();
    let (mut nodes, mut edges, mut styles) = (Vec::new(), Vec::new(), Vec::new());
    for l in &lines[1..] {
        if let Some(c) = node.captures(l) {
            nodes.push(c[1].parse::<usize>().unwrap());
        } else if let Some(c) = edge.captures(l) {
            edges.push((
                c[1].parse::<usize>().unwrap(),
                c[2].parse::<usize>().unwrap(),
            ));
        } else if let Some(c) = style.captures(l) {
            styles.push(c[1].parse::<usize>().unwrap());
        } else {
            panic!("unexpected line {l:?} in\n{}", r.stdout);
        }
    }
    assert_eq!(nodes, (0..9).collect::<Vec<_>>());
    assert_eq!(edges.len(), 8);
    assert!(edges.iter().all(|(a, b)| *a < 9 && *b < 9));
    assert_eq!(styles, (0..8).collect::<Vec<_>>());
    // Peers are rounded, workloads boxes; the dropped edge is red.
    assert!(r.stdout.contains("(\"world\")"), "{}", r.stdout);
    assert!(r.stdout.contains("[\"default/xwing\"]"), "{}", r.stdout);
    assert!(
        r.stdout.contains("linkStyle 2 stroke:#d62728"),
        "{}",
        r.stdout
    );
}

#[test]
fn json_has_the_documented_shape() {
    let r = map(&["-o", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let mut top = keys(&v);
    top.sort();
    assert_eq!(top, ["edges", "flows", "grouping", "nodes", "overflow"]);
    assert_eq!(v["grouping"], "workload");
    assert_eq!(v["flows"], 12);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 9);
    for n in nodes {
        let mut k = keys(n);
        k.sort();
        assert_eq!(k, ["id", "kind", "label", "namespace"]);
    }
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 8);
    for e in edges {
        let mut k = keys(e);
        k.sort();
        assert_eq!(
            k,
            [
                "dropped",
                "forwarded",
                "other",
                "ports",
                "services",
                "source",
                "target",
                "total"
            ]
        );
        // Edges name nodes by id.
        for end in ["source", "target"] {
            assert!(nodes.iter().any(|n| n["id"] == e[end]), "{e}");
        }
    }
    assert_eq!(
        edges[0],
        serde_json::json!({
            "source": "default/xwing", "target": "default/deathstar",
            "forwarded": 1, "dropped": 2, "other": 0, "total": 3,
            "ports": ["80/TCP"], "services": []
        })
    );
    let world = nodes.iter().find(|n| n["id"] == "reserved:world").unwrap();
    assert_eq!(world["kind"], "world");
    assert_eq!(world["label"], "world");
}

fn archive_fixture(dir: &std::path::Path) {
    let storage = Arc::new(LocalDir::new(dir).unwrap());
    let mut w = ArchiveWriter::new(storage, WriterOptions::default()).unwrap();
    for ev in replay::load(&common::fixture()).unwrap().events {
        if let ReplayEvent::Flow(f) = ev {
            w.append(&f).unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn server_archive_and_input_file_give_the_same_map() {
    let want = map(&["-o", "json"]).stdout;
    let server = common::start();
    let r = common::run(&["map", "--server", &server.addr, "--all", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, want);
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let r = common::run(&[
        "map",
        "--archive",
        dir.path().to_str().unwrap(),
        "--all",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, want);
    // Filters apply server-side too.
    let r = common::run(&[
        "map",
        "--server",
        &server.addr,
        "--all",
        "--from-pod",
        "default/xwing",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .ends_with("4 flows, 4 nodes, 3 edges by workload\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn follow_redraws_the_text_map() {
    let server = common::start();
    let child = common::hubble()
        .args([
            "map",
            "--server",
            &server.addr,
            "--follow",
            "--since",
            "2000-01-01T00:00:00Z",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = common::Killed(Some(child));
    let out = guard.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no full map within 20 s: {seen:?}"));
        if line == "12 flows, 9 nodes, 8 edges by workload" {
            break;
        }
        seen.push(line);
    }
    assert!(seen.iter().any(|l| l.starts_with("SOURCE ")), "{seen:?}");
    drop(guard);
}

#[test]
fn refusals_explain_themselves() {
    for o in ["dot", "mermaid", "json"] {
        let r = common::run(&["map", "--follow", "-o", o]);
        assert_eq!(r.code, 1);
        assert!(
            r.stderr
                .starts_with(&format!("--follow cannot be used with -o {o}: ")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("--last N"), "{}", r.stderr);
    }
    let r = common::run(&["map", "--follow", "--archive", "/nonexistent"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("an archive is history"), "{}", r.stderr);
    let r = common::run(&["map", "-o", "svg"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("\"svg\"") && r.stderr.contains("dot, mermaid, json"),
        "{}",
        r.stderr
    );
    let f = fixture();
    let r = common::run(&["map", "--input-file", &f, "--group-by", "pod"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("invalid --group-by \"pod\""),
        "{}",
        r.stderr
    );
    let r = common::run(&["map", "--input-file", &f, "--focus", "default/nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--focus \"default/nope\": no such node"),
        "{}",
        r.stderr
    );
}
