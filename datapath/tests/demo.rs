//! Privileged, the whole two-node Star Wars demo end to end:
//! `scripts/demo-up.sh` (with the debug binaries, its own namespace prefix,
//! state directory, etcd and Observer ports, so a developer's running demo
//! is not disturbed), then `hubble observe` against the relay until xwing
//! (node 2) → deathstar (node 1) shows POLICY_DENY drops on node 1 with
//! pod names and tiefighter → deathstar is forwarded and never dropped;
//! the policy verdicts name the policies (tiefighter allowed by `rule1`,
//! xwing denied by `deny-xwing-80`) in JSON and with `--print-policy-names`;
//! then `scripts/demo-down.sh` (twice) must leave no namespaces, links,
//! pins, etcd or state. A guard runs demo-down also when the test fails.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::free_port;

struct Demo {
    root: PathBuf,
    bin: PathBuf,
    prefix: String,
    state: PathBuf,
    port: u16,
    node_ports: String,
    etcd_ports: String,
    down: bool,
}

impl Demo {
    fn script(&self, name: &str) -> std::process::Output {
        Command::new(self.root.join("scripts").join(name))
            .env("BIN_DIR", &self.bin)
            .env("DEMO_PREFIX", &self.prefix)
            .env("DEMO_STATE", &self.state)
            .env("DEMO_PORT", self.port.to_string())
            .env("DEMO_METRICS", "off")
            .env("DEMO_NODE_PORTS", &self.node_ports)
            .env("DEMO_ETCD_PORTS", &self.etcd_ports)
            .env("DEMO_POD_CIDRS", "10.202.11.0/24 10.202.12.0/24")
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"))
    }

    fn down(&mut self) {
        let out = self.script("demo-down.sh");
        self.down = true;
        assert!(
            out.status.success(),
            "demo-down: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `hubble observe --server … -o json ARGS`, one JSON flow per line.
    fn observe(&self, args: &[&str]) -> Vec<Value> {
        let out = Command::new(self.bin.join("hubble"))
            .args(["observe", "--server", &format!("127.0.0.1:{}", self.port)])
            .args(["-o", "json", "--last", "1000"])
            .args(args)
            .output()
            .expect("run hubble");
        assert!(
            out.status.success(),
            "hubble observe {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                v.get("flow").cloned().unwrap_or(v)
            })
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs: Vec<String> = std::fs::read_dir(self.state.join("logs"))
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            e.file_name()
                                .to_string_lossy()
                                .trim_end_matches(".log")
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            for log in logs {
                let p = self.state.join("logs").join(format!("{log}.log"));
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                eprintln!("---- {log} log (last lines) ----");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        if !self.down {
            let _ = self.script("demo-down.sh");
        }
    }
}

fn pod(f: &Value, side: &str) -> String {
    format!(
        "{}/{}",
        f[side]["namespace"].as_str().unwrap_or(""),
        f[side]["pod_name"].as_str().unwrap_or("")
    )
}

fn to_deathstar(f: &Value) -> bool {
    pod(f, "destination").starts_with("default/deathstar-")
}

fn netns_names() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn star_wars_demo_up_observe_and_down() {
    test_support::require_privileges!("clang", "etcd", "jq", "curl");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = Path::new(env!("CARGO_BIN_EXE_datapath"))
        .parent()
        .unwrap()
        .to_path_buf();
    // The exporter and the CLI live in other packages: build them (debug,
    // next to this package's binaries).
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--workspace"])
        .args([
            "--bin",
            "flow-exporter",
            "--bin",
            "hubble",
            "--bin",
            "relay",
        ])
        .status()
        .expect("cargo build");
    assert!(st.success(), "cargo build of flow-exporter and hubble");
    assert!(bin.join("flow-exporter").exists() && bin.join("hubble").exists());

    let tag = std::process::id() % 100_000;
    let mut demo = Demo {
        root,
        bin,
        prefix: format!("swt{tag}"),
        state: PathBuf::from(format!("/run/hubble-demo-test-{tag}")),
        port: free_port(),
        node_ports: format!("{} {}", free_port(), free_port()),
        etcd_ports: format!("{} {}", free_port(), free_port()),
        down: false,
    };
    let pins: Vec<PathBuf> = ["node-1", "node-2"]
        .iter()
        .map(|n| PathBuf::from("/sys/fs/bpf/datapath").join(format!("{}-{n}", demo.prefix)))
        .collect();

    let out = demo.script("demo-up.sh");
    assert!(
        out.status.success(),
        "demo-up: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A second demo-up refuses clearly and leaves the running demo alone.
    let again = demo.script("demo-up.sh");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    // Wait for the traffic loop to show both outcomes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (xwing_drop, tf_forwarded) = loop {
        let drops = demo.observe(&["--verdict", "DROPPED"]);
        let xwing_drop = drops
            .iter()
            .find(|f| {
                pod(f, "source") == "default/xwing"
                    && to_deathstar(f)
                    && f["drop_reason_desc"] == "POLICY_DENY"
            })
            .cloned();
        let tf = demo.observe(&["--from-pod", "default/tiefighter", "--verdict", "FORWARDED"]);
        let tf_forwarded = tf.iter().find(|f| to_deathstar(f)).cloned();
        if let (Some(x), Some(t)) = (&xwing_drop, &tf_forwarded) {
            break (x.clone(), t.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no xwing POLICY_DENY drop ({}) or tiefighter forward ({}) within 30 s; drops: {drops:?}",
            xwing_drop.is_some(),
            tf_forwarded.is_some()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Enriched: identities and labels of both ends.
    for side in ["source", "destination"] {
        assert!(
            xwing_drop[side]["identity"].as_u64().unwrap_or(0) >= 256,
            "{xwing_drop}"
        );
    }
    // xwing is on node 2: dropped on node 1, where the Death Star is,
    // against the identity the tunnel carried; both nodes are in the view.
    assert_eq!(
        xwing_drop["node_name"].as_str().unwrap_or(""),
        format!("{}-node-1", demo.prefix),
        "{xwing_drop}"
    );
    let nodes: Vec<String> = demo
        .observe(&[])
        .iter()
        .filter_map(|f| f["node_name"].as_str().map(str::to_string))
        .collect();
    assert!(
        nodes.iter().any(|n| n.ends_with("-node-2")),
        "flows of node 2 through the relay: {nodes:?}"
    );
    let labels = xwing_drop["source"]["labels"].to_string();
    assert!(labels.contains("org=alliance"), "{xwing_drop}");
    assert!(
        xwing_drop["destination"]["labels"]
            .to_string()
            .contains("class=deathstar"),
        "{xwing_drop}"
    );
    assert_eq!(tf_forwarded["verdict"], "FORWARDED", "{tf_forwarded}");
    let tf_drops = demo.observe(&["--from-pod", "default/tiefighter", "--verdict", "DROPPED"]);
    assert!(tf_drops.is_empty(), "tiefighter dropped: {tf_drops:?}");

    // Which policy decided: the verdicts name rule1 and deny-xwing-80.
    let names = |f: &Value, field: &str| -> Vec<String> {
        f[field]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|p| {
                        format!(
                            "{} ({})",
                            p["name"].as_str().unwrap_or(""),
                            p["kind"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (tf_v, xw_v) = loop {
        let v = demo.observe(&["--type", "policy-verdict"]);
        let tf = v
            .iter()
            .find(|f| {
                pod(f, "source") == "default/tiefighter"
                    && !names(f, "ingress_allowed_by").is_empty()
            })
            .cloned();
        let xw = v
            .iter()
            .find(|f| {
                pod(f, "source") == "default/xwing" && !names(f, "ingress_denied_by").is_empty()
            })
            .cloned();
        if let (Some(t), Some(x)) = (&tf, &xw) {
            break (t.clone(), x.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no named verdicts within 30 s (tiefighter {}, xwing {}): {v:?}",
            tf.is_some(),
            xw.is_some()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        names(&tf_v, "ingress_allowed_by"),
        ["rule1 (CiliumNetworkPolicy)"],
        "{tf_v}"
    );
    assert_eq!(tf_v["verdict"], "FORWARDED", "{tf_v}");
    assert_eq!(
        names(&xw_v, "ingress_denied_by"),
        ["deny-xwing-80 (CiliumNetworkPolicy)"],
        "{xw_v}"
    );
    assert_eq!(xw_v["verdict"], "DROPPED", "{xw_v}");
    let out = Command::new(demo.bin.join("hubble"))
        .args(["observe", "--server", &format!("127.0.0.1:{}", demo.port)])
        .args([
            "--last",
            "1000",
            "--verdict",
            "DROPPED",
            "--print-policy-names",
        ])
        .output()
        .expect("run hubble");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.lines().any(|l| l.contains("default/xwing")
            && l.contains(
                "policy-verdict:L3-L4 INGRESS DENIED BY deny-xwing-80 (CiliumNetworkPolicy)"
            )),
        "{out}"
    );

    // The ships land through the deathstar service: each node's datapath
    // has its frontend with both pods as backends, and tiefighter's
    // connections to the one address reach both pods.
    for node in ["node-1", "node-2"] {
        let sock = demo
            .state
            .join(format!("{}-{node}/agent.sock", demo.prefix));
        let out = Command::new(demo.bin.join("datapath"))
            .arg("--api-socket")
            .arg(&sock)
            .args(["service", "list"])
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "service list on {node}: {list}");
        assert!(list.contains("10.96.0.20:80/TCP"), "{node}: {list}");
        assert_eq!(list.matches("(active)").count(), 2, "{node}: {list}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tf = demo.observe(&["--from-pod", "default/tiefighter", "--verdict", "FORWARDED"]);
        let reached: std::collections::BTreeSet<String> = tf
            .iter()
            .filter(|f| to_deathstar(f))
            .map(|f| pod(f, "destination"))
            .collect();
        if reached.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tiefighter's landings through the service reached only {reached:?} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The translations as Hubble shows Cilium's (trace-sock): before
    // translation (TRACED, to the VIP) `--to-service` finds them with the
    // service filled; after (TRANSLATED) they go to a deathstar pod. Hubble
    // looks the service up by the record's address, so only the first names
    // it. Both ships, each on its own node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pre = demo.observe(&["--to-service", "default/deathstar"]);
        for f in &pre {
            assert_eq!(f["destination_service"]["name"], "deathstar", "{f}");
            assert_eq!(f["destination_service"]["namespace"], "default", "{f}");
            assert_eq!(f["Type"], "SOCK", "{f}");
        }
        let post = demo.observe(&["--type", "trace-sock", "--verdict", "TRANSLATED"]);
        let from = |flows: &[Value], ship: &str, point: &str| {
            flows.iter().any(|f| {
                pod(f, "source") == format!("default/{ship}") && f["sock_xlate_point"] == point
            })
        };
        if ["tiefighter", "xwing"].iter().all(|s| {
            from(&pre, s, "SOCK_XLATE_POINT_PRE_DIRECTION_FWD")
                && from(&post, s, "SOCK_XLATE_POINT_POST_DIRECTION_FWD")
        }) {
            assert!(post.iter().all(to_deathstar), "TRANSLATED to a non-pod");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no trace-sock pair of both ships for default/deathstar within 30 s ({} before, {} after translation)",
            pre.len(),
            post.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Both nodes translated connections (tiefighter's on node 1, xwing's on
    // node 2): the kernel's counters in `datapath status`.
    for node in ["node-1", "node-2"] {
        let sock = demo
            .state
            .join(format!("{}-{node}/agent.sock", demo.prefix));
        let out = Command::new(demo.bin.join("datapath"))
            .arg("--api-socket")
            .arg(&sock)
            .arg("status")
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&out.stdout);
        let line = status
            .lines()
            .find(|l| l.starts_with("services: 1 "))
            .unwrap_or_else(|| panic!("{node} status: {status}"));
        let new: u64 = line
            .split("new connections ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{node}: {line}"));
        assert!(new > 0, "{node}: {line}");
    }

    // Down (twice): nothing of the demo remains.
    demo.down();
    demo.down();
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&demo.prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    for p in &pins {
        assert!(!p.exists(), "pins left at {}", p.display());
    }
    let etcds = Command::new("pgrep")
        .args([
            "-f",
            &format!("etcd --name demo --data-dir {}", demo.state.display()),
        ])
        .output()
        .unwrap();
    assert!(etcds.stdout.is_empty(), "etcd still runs");
    assert!(
        !demo.state.exists(),
        "state left at {}",
        demo.state.display()
    );
    let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.lines().any(|l| l.starts_with("lxc")),
        "host links left: {links}"
    );
    let listening = TcpListener::bind(("127.0.0.1", demo.port));
    assert!(listening.is_ok(), "the exporter still holds its port");
}
