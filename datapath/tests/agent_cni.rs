//! Privileged, end to end on one node: the `datapath agent` binary runs for
//! a "node" network namespace, three Star Wars pods are created through the
//! `datapath-cni` binary exactly as a runtime calls it (CNI_* environment,
//! network configuration on stdin, run in the node's namespace), and then:
//! connectivity without policy; the Star Wars policy dropped into the
//! policy directory takes effect live (xwing dropped with a POLICY_DENIED
//! event, tiefighter allowed); an edit of the file flips it; the enrichment
//! file names the pods; services through the API (cluster store) and the
//! services directory (frontends, backends, 400s naming object and reason,
//! a bad file edit keeps the previous version, enrichment); CHECK and VERSION; failed ADDs leave nothing
//! behind; agent restarts (SIGTERM, SIGKILL) do not break an established
//! TCP stream and re-adopt the endpoints; DEL (twice) removes everything. Guards remove namespaces,
//! links, pins and processes also when the test fails.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use datapath::api::{Client, EndpointView, StatusView};
use datapath::netns::in_netns;
use ebpf::{RawEvent, drop_reason};

use common::{Harness, NetNs, Scratch, sh_out};

const POD_CIDR: &str = "10.201.7.0/24";

/// The agent process; SIGTERM (then SIGKILL) on drop, its log printed when
/// the test is failing.
struct AgentProc {
    child: Child,
    log: PathBuf,
}

struct AgentSpec {
    node: String,
    netns: PathBuf,
    state: PathBuf,
    pins: PathBuf,
    policies: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl AgentProc {
    fn start(s: &AgentSpec) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log)
            .expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_datapath"))
            .args(["agent", "--node-name", &s.node, "--pod-cidr", POD_CIDR])
            .arg("--state-dir")
            .arg(&s.state)
            .arg("--bpffs-dir")
            .arg(&s.pins)
            .arg("--policy-dir")
            .arg(&s.policies)
            .arg("--api-socket")
            .arg(&s.socket)
            .arg("--netns")
            .arg(&s.netns)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn agent");
        let me = Self {
            child,
            log: s.log.clone(),
        };
        let client = Client::new(&s.socket);
        wait_for("agent API", || client.get::<String>("/v1/healthz").is_ok());
        me
    }

    /// SIGKILL and wait: a crash.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful stop that leaves programs attached.
    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "agent exited with {st}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("agent did not stop on SIGTERM");
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            std::thread::sleep(Duration::from_millis(300));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- agent log ----\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// One CNI invocation as a runtime makes it; `(exit success, stdout JSON)`.
fn cni(
    node: &NetNs,
    command: &str,
    cid: &str,
    netns: &str,
    args: &str,
    conf: &serde_json::Value,
) -> (bool, serde_json::Value) {
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", node.path().display()))
        .arg(env!("CARGO_BIN_EXE_datapath-cni"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .env("CNI_ARGS", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn datapath-cni");
    // The plugin may exit before reading (VERSION needs no configuration):
    // a broken pipe here is not a failure, its answer is.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes());
    let out = child.wait_with_output().unwrap();
    let v = if out.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: bad JSON {e}: {:?}", out.stdout))
    };
    (out.status.success(), v)
}

/// A pod created through CNI ADD; CNI DEL on drop (before its namespace goes).
struct Pod<'a> {
    node: &'a NetNs,
    conf: serde_json::Value,
    cid: String,
    ip: Ipv4Addr,
    result: serde_json::Value,
    deleted: std::cell::Cell<bool>,
    ns: NetNs,
}

impl<'a> Pod<'a> {
    fn add(node: &'a NetNs, conf: &serde_json::Value, name: &str, labels: &str) -> Self {
        let ns = NetNs::new("dpcp");
        let cid = format!(
            "{:0>64}",
            common::unique(name).replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name};K8S_POD_LABELS={labels}"
        );
        let (ok, result) = cni(node, "ADD", &cid, &ns.path().to_string_lossy(), &args, conf);
        assert!(ok, "ADD {name}: {result}");
        assert_eq!(result["cniVersion"], "1.0.0");
        assert_eq!(result["interfaces"][1]["name"], "eth0");
        assert_eq!(
            result["interfaces"][1]["sandbox"],
            ns.path().to_string_lossy().as_ref()
        );
        assert_eq!(result["ips"][0]["interface"], 1);
        assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0");
        let addr = result["ips"][0]["address"].as_str().unwrap();
        let ip: Ipv4Addr = addr.trim_end_matches("/32").parse().unwrap();
        Pod {
            node,
            conf: conf.clone(),
            cid,
            ip,
            result,
            deleted: std::cell::Cell::new(false),
            ns,
        }
    }

    fn del(&self) -> (bool, serde_json::Value) {
        let r = cni(
            self.node,
            "DEL",
            &self.cid,
            &self.ns.path().to_string_lossy(),
            "",
            &self.conf,
        );
        if r.0 {
            self.deleted.set(true);
        }
        r
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if !self.deleted.get() {
            let _ = self.del();
        }
    }
}

/// TCP servers on ports 80 and 8080 inside a namespace; stopped on drop.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    fn start(ns: PathBuf, ip: Ipv4Addr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for port in [80, 8080] {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop2, ns) = (stop.clone(), ns.clone());
            threads.push(std::thread::spawn(move || {
                let f = std::fs::File::open(&ns).expect("open netns");
                // SAFETY: valid namespace fd; only this dedicated thread moves.
                assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
                let l = TcpListener::bind((ip, port)).expect("bind");
                l.set_nonblocking(true).unwrap();
                tx.send(()).unwrap();
                while !stop2.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            // Echo until EOF, one thread per connection (it
                            // inherits this thread's namespace).
                            std::thread::spawn(move || {
                                s.set_nonblocking(false).unwrap();
                                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                let mut buf = [0u8; 64];
                                while let Ok(n) = s.read(&mut buf) {
                                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }));
            rx.recv_timeout(Duration::from_secs(5)).expect("server up");
        }
        Self { stop, threads }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A TCP stream of small round trips from one pod to another, on its own
/// thread, recording the longest pause between round trips.
struct Stream {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(u64, Duration), String>>,
}

impl Stream {
    fn start(from: &Pod<'_>, to: &Pod<'_>, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, addr, stop2) = (
            from.ns.path(),
            SocketAddr::from((to.ip, port)),
            stop.clone(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).map_err(|e| e.to_string())?;
            // SAFETY: valid namespace fd; only this dedicated thread moves.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let r = (|| -> std::io::Result<(u64, Duration)> {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let _ = tx.send(());
                let (mut n, mut max_gap, mut last) = (0u64, Duration::ZERO, Instant::now());
                let mut buf = [0u8; 8];
                while !stop2.load(Ordering::Relaxed) {
                    s.write_all(&n.to_be_bytes())?;
                    s.read_exact(&mut buf)?;
                    assert_eq!(u64::from_be_bytes(buf), n);
                    n += 1;
                    max_gap = max_gap.max(last.elapsed());
                    last = Instant::now();
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok((n, max_gap))
            })();
            r.map_err(|e| e.to_string())
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("stream connected");
        Self { stop, thread }
    }

    fn finish(self) -> Result<(u64, Duration), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("stream thread")
    }
}

/// A landing request from `from` to `to:port`.
fn land(from: &Pod<'_>, to: &Pod<'_>, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((to.ip, port));
    in_netns(Some(&from.ns.path()), || {
        Ok((|| -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"landing request")?;
            let mut buf = [0u8; 15];
            s.read_exact(&mut buf)?;
            assert_eq!(&buf, b"landing request");
            Ok(())
        })()
        .map_err(|e| e.to_string()))
    })
    .expect("netns switch")
}

fn policy(from_org: &str) -> String {
    format!(
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: {from_org}
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
"#
    )
}

fn links_in(ns: &NetNs) -> Vec<String> {
    sh_out(&["ip", "-n", &ns.name, "-br", "link"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo")
        .collect()
}

/// A ClusterIP Service of the deathstar pod.
fn deathstar_service(ip: &str, port: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: deathstar, namespace: default}}\n\
         spec:\n  clusterIP: {ip}\n  selector: {{org: empire, class: deathstar}}\n  \
         ports:\n  - port: {port}\n"
    )
}

/// Services end to end through the agent: `POST /v1/services` stores a
/// Service (its backend is the deathstar pod, matched by labels), `GET`
/// lists frontend and backend, invalid ones are a 400 naming object and
/// reason and change nothing, a file in the services directory beside the
/// policy directory applies live (NodePort on the node's address), the
/// enrichment file names the services, `DELETE` removes.
fn check_services(spec: &AgentSpec, client: &Client, deathstar: Ipv4Addr) {
    use datapath::agent::services::ServiceList;
    let r: serde_json::Value = client
        .post(
            "/v1/services",
            &datapath::api::ServiceApply {
                yaml: deathstar_service("10.96.0.20", 80),
            },
        )
        .expect("apply deathstar service");
    assert_eq!(r["applied"], serde_json::json!(["default/deathstar"]));
    let l: ServiceList = client.get("/v1/services").unwrap();
    assert_eq!(l.frontends.len(), 1, "{l:?}");
    assert_eq!(l.frontends[0].frontend, "10.96.0.20:80/TCP");
    assert_eq!(l.frontends[0].kind, "ClusterIP");
    assert_eq!(l.frontends[0].backends.len(), 1);
    assert_eq!(
        l.frontends[0].backends[0].address,
        format!("{deathstar}:80/TCP")
    );
    assert_eq!(l.frontends[0].backends[0].state, "active");

    for (yaml, words) in [
        (
            deathstar_service("10.96.0.21", 70000),
            &["Service default/deathstar", "spec.ports[0].port", "70000"][..],
        ),
        (
            deathstar_service("10.96.0.20", 80).replace("name: deathstar", "name: other"),
            &[
                "Service default/other",
                "already used by Service default/deathstar",
            ][..],
        ),
        (
            deathstar_service("10.96.0.21", 80)
                .replace("  - port: 80", "  - port: 80\n    protocol: ICMP"),
            &["unknown protocol \"ICMP\""][..],
        ),
        (
            deathstar_service("10.96.0.21", 80).replace("org: empire", "\"org!\": empire"),
            &["spec.selector", "label key \"org!\""][..],
        ),
    ] {
        let e = client
            .post::<_, serde_json::Value>("/v1/services", &datapath::api::ServiceApply { yaml })
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
        for w in words {
            assert!(e.to_string().contains(w), "{e} lacks {w}");
        }
    }
    let after: ServiceList = client.get("/v1/services").unwrap();
    assert_eq!(
        after.frontends, l.frontends,
        "rejected services change nothing"
    );

    // The services directory (default: beside the policy directory).
    let dir = spec.policies.parent().unwrap().join("services");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("np.yaml"),
        deathstar_service("10.96.0.22", 8080)
            .replace("name: deathstar", "name: landing")
            .replace("spec:", "spec:\n  type: NodePort")
            .replace(
                "  - port: 8080",
                "  - port: 8080\n    targetPort: 80\n    nodePort: 30080",
            ),
    )
    .unwrap();
    wait_for("NodePort service from the directory", || {
        let l: ServiceList = client.get("/v1/services").unwrap();
        l.frontends
            .iter()
            .any(|f| f.frontend == "10.201.99.1:30080/TCP" && f.kind == "NodePort")
    });
    wait_for("enrichment names the services", || {
        let Ok(enr) = flow_parser::StaticEnrichment::from_file(spec.state.join("enrichment.json"))
        else {
            return false;
        };
        let s = &enr.spec().services;
        s.iter().any(|i| {
            i.name == "deathstar"
                && i.namespace == "default"
                && i.ips == [std::net::IpAddr::from([10, 96, 0, 20])]
                && i.ports == [80]
        }) && s.iter().any(|i| i.name == "landing" && i.ports == [8080])
            && s.iter().any(|i| {
                i.name == "landing"
                    && i.ports == [30080]
                    && i.ips.contains(&std::net::IpAddr::from([10, 201, 99, 1]))
            })
    });

    // A bad edit of the file is reported (file, object, reason) and the
    // previous version stays in force.
    let before: ServiceList = client.get("/v1/services").unwrap();
    let np = std::fs::read_to_string(dir.join("np.yaml")).unwrap();
    std::fs::write(
        dir.join("np.yaml"),
        np.replace("nodePort: 30080", "nodePort: 80"),
    )
    .unwrap();
    wait_for("bad edit reported", || {
        let l: ServiceList = client.get("/v1/services").unwrap();
        l.errors.iter().any(|e| {
            e.contains("np.yaml: Service default/landing: spec.ports[0].nodePort")
                && e.contains("80 outside the node port range")
        })
    });
    let l: ServiceList = client.get("/v1/services").unwrap();
    assert_eq!(l.frontends, before.frontends, "the previous version stays");

    let r: serde_json::Value = client.delete("/v1/services/default/deathstar").unwrap();
    assert_eq!(r["removed"], true);
    let r: serde_json::Value = client.delete("/v1/services/default/deathstar").unwrap();
    assert_eq!(r["removed"], false);
    std::fs::remove_file(dir.join("np.yaml")).unwrap();
    wait_for("services gone", || {
        client
            .get::<ServiceList>("/v1/services")
            .unwrap()
            .frontends
            .is_empty()
    });
}

fn wait_enforced(client: &Client, ep_ip: Ipv4Addr, revision_after: u64) {
    wait_for("policy applied", || {
        let st: StatusView = client.get("/v1/status").unwrap();
        let eps: Vec<EndpointView> = client.get("/v1/endpoints").unwrap();
        st.policy_revision > revision_after
            && st.policy_error.is_none()
            && eps
                .iter()
                .any(|e| e.record.ip == ep_ip && e.enforcement.ingress && e.policy_entries > 0)
    });
}

#[test]
fn agent_and_cni_plugin_wire_pods_and_apply_policy_live() {
    require_privileges!();
    let scratch = Scratch::new();
    let node = NetNs::new("dpcn");
    sh_out(&[
        "ip",
        "netns",
        "exec",
        &node.name,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    // The node's own address (as a real host has one): the host identity.
    node.ip(&["addr", "add", "10.201.99.1/32", "dev", "lo"]);
    let spec = AgentSpec {
        node: node.name.clone(),
        netns: node.path(),
        state: scratch.dir.join("state"),
        pins: scratch.pin_dir(),
        policies: scratch.dir.join("policies"),
        socket: scratch.dir.join("agent.sock"),
        log: scratch.dir.join("agent.log"),
    };
    std::fs::create_dir_all(&spec.policies).unwrap();
    let mut agent = AgentProc::start(&spec);
    let client = Client::new(&spec.socket);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "datapath",
        "type": "datapath-cni",
        "agentSocket": spec.socket,
    });

    // VERSION works without anything else.
    let (ok, v) = cni(&node, "VERSION", "", "dummy", "", &conf);
    assert!(ok);
    assert!(
        v["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&"1.0.0".into())
    );

    let deathstar = Pod::add(&node, &conf, "deathstar", "org=empire,class=deathstar");
    let tiefighter = Pod::add(&node, &conf, "tiefighter", "org=empire,class=tiefighter");
    let xwing = Pod::add(&node, &conf, "xwing", "org=alliance,class=xwing");
    let _servers = Servers::start(deathstar.ns.path(), deathstar.ip);
    assert_eq!(links_in(&node).len(), 3, "one host veth per pod");

    // 1. No policy: everyone lands.
    land(&tiefighter, &deathstar, 80).expect("tiefighter, no policy");
    land(&xwing, &deathstar, 80).expect("xwing, no policy");

    // The node stack reaches pods (its address resolves to the host identity).
    let maps = datapath::Maps::open(&spec.pins).unwrap();
    assert_eq!(
        maps.lookup_prefix(Ipv4Addr::new(10, 201, 99, 1))
            .unwrap()
            .map(|v| v.identity),
        Some(1)
    );
    let to = SocketAddr::from((deathstar.ip, 80));
    in_netns(Some(&node.path()), || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("node -> pod");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("echo to the node");
        Ok(())
    })
    .unwrap();

    // 2. The Star Wars policy, dropped into the watched directory.
    let eps: Vec<EndpointView> = client.get("/v1/endpoints").unwrap();
    let id_of = |ip: Ipv4Addr| {
        eps.iter()
            .find(|e| e.record.ip == ip)
            .unwrap()
            .record
            .identity
    };
    let (ds_id, tf_id, xw_id) = (id_of(deathstar.ip), id_of(tiefighter.ip), id_of(xwing.ip));
    assert!(ds_id >= 256 && tf_id >= 256 && xw_id >= 256);
    let rev: u64 = client
        .get::<StatusView>("/v1/status")
        .unwrap()
        .policy_revision;
    let pol_file = spec.policies.join("starwars.yaml");
    std::fs::write(&pol_file, policy("empire")).unwrap();
    wait_enforced(&client, deathstar.ip, rev);
    let mut ring = Harness::ring_at(&spec.pins);
    Harness::drain_ring(&mut ring);
    land(&tiefighter, &deathstar, 80).expect("tiefighter is allowed on 80");
    land(&tiefighter, &deathstar, 8080).expect_err("not on 8080");
    land(&xwing, &deathstar, 80).expect_err("xwing is denied");
    // `--allow-localhost` is `auto` (= `always`, as Cilium under
    // Kubernetes): the node still reaches the enforcing deathstar, on a
    // port no rule allows.
    let to = SocketAddr::from((deathstar.ip, 8080));
    in_netns(Some(&node.path()), || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .expect("node -> enforcing pod (allow-localhost)");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("echo to the node");
        Ok(())
    })
    .unwrap();
    let drops: Vec<ebpf::DropEvent> = Harness::drain_ring(&mut ring)
        .iter()
        .filter_map(|r| match ebpf::parse(r).ok()? {
            RawEvent::Drop(d, _) => Some(d),
            _ => None,
        })
        .collect();
    assert!(
        drops
            .iter()
            .any(|d| d.hdr.subtype == drop_reason::POLICY_DENIED
                && (d.src_label, d.dst_label) == (xw_id, ds_id)),
        "xwing → deathstar POLICY_DENIED drop: {drops:?}"
    );

    // The exporter's enrichment file names the pods.
    let enr = flow_parser::StaticEnrichment::from_file(spec.state.join("enrichment.json"))
        .expect("enrichment file");
    let names: Vec<&str> = enr
        .spec()
        .endpoints
        .iter()
        .map(|e| e.pod_name.as_str())
        .collect();
    for n in ["deathstar", "tiefighter", "xwing"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(enr.spec().identities[&xw_id].contains(&"k8s:org=alliance".to_string()));

    // Services: through the API (cluster store) and the services directory.
    check_services(&spec, &client, deathstar.ip);

    // 3. A live edit: now only the Alliance may land.
    let rev: u64 = client
        .get::<StatusView>("/v1/status")
        .unwrap()
        .policy_revision;
    std::fs::write(&pol_file, policy("alliance")).unwrap();
    wait_enforced(&client, deathstar.ip, rev);
    land(&xwing, &deathstar, 80).expect("xwing allowed after the edit");
    land(&tiefighter, &deathstar, 80).expect_err("tiefighter denied after the edit");

    // An invalid edit is reported and leaves the last valid policy in force.
    std::fs::write(
        &pol_file,
        policy("alliance").replace("fromEndpoints", "fromEndpoint"),
    )
    .unwrap();
    wait_for("policy error reported", || {
        client
            .get::<StatusView>("/v1/status")
            .unwrap()
            .policy_error
            .is_some_and(|e| e.contains("starwars.yaml") && e.contains("fromEndpoint"))
    });
    land(&xwing, &deathstar, 80).expect("last valid policy stays");

    // 4. CHECK with the ADD result as prevResult.
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = xwing.result.clone();
    let (ok, v) = cni(
        &node,
        "CHECK",
        &xwing.cid,
        &xwing.ns.path().to_string_lossy(),
        "",
        &check_conf,
    );
    assert!(ok, "CHECK: {v}");

    // 5. Failed ADDs leave nothing behind.
    let ipam_before = std::fs::read(spec.state.join("ipam.json")).unwrap();
    let (ok, v) = cni(&node, "ADD", "f00d", "/run/netns/does-not-exist", "", &conf);
    assert!(!ok);
    assert_eq!(v["code"], 3, "{v}");
    // eth0 already exists in that namespace: fails after the veth exists.
    let (ok, v) = cni(
        &node,
        "ADD",
        "f00e",
        &xwing.ns.path().to_string_lossy(),
        "",
        &conf,
    );
    assert!(!ok);
    assert!(v["msg"].as_str().unwrap().contains("already exists"), "{v}");
    assert_eq!(links_in(&node).len(), 3, "no leftover veth");
    assert_eq!(
        std::fs::read(spec.state.join("ipam.json")).unwrap(),
        ipam_before
    );
    land(&xwing, &deathstar, 80).expect("the existing xwing is untouched");

    // 6. Agent restarts (graceful, then SIGKILL) under an established TCP
    // stream: it never breaks; traffic flows while the agent is down, and
    // the restarted agent re-adopts its state.
    let stream = Stream::start(&xwing, &deathstar, 80);
    std::thread::sleep(Duration::from_millis(200));
    agent.stop();
    land(&xwing, &deathstar, 80).expect("forwarding without an agent");
    land(&tiefighter, &deathstar, 80).expect_err("policy enforced without an agent");
    let mut agent = AgentProc::start(&spec);
    std::thread::sleep(Duration::from_millis(200));
    agent.kill();
    let mut agent = AgentProc::start(&spec);
    std::thread::sleep(Duration::from_millis(200));
    let (round_trips, max_gap) = stream.finish().expect("the stream survived both restarts");
    eprintln!(
        "stream across two agent restarts: {round_trips} round trips, longest gap {max_gap:?}"
    );
    assert!(round_trips > 10, "{round_trips}");
    let st: StatusView = client.get("/v1/status").unwrap();
    assert_eq!(st.endpoints_readopted, 3);
    assert!(st.maps_reused.contains(&"policy".to_string()), "{st:?}");
    land(&xwing, &deathstar, 80).expect("after restart");
    let eps2: Vec<EndpointView> = client.get("/v1/endpoints").unwrap();
    assert_eq!(eps2.len(), 3);
    assert_eq!(
        eps2.iter()
            .find(|e| e.record.ip == xwing.ip)
            .unwrap()
            .record
            .identity,
        xw_id,
        "identities are stable across restarts"
    );

    // 7. A pod whose namespace vanishes without a CNI DEL is collected.
    let ghost = Pod::add(&node, &conf, "ghost", "app=ghost");
    assert_eq!(
        client
            .get::<Vec<EndpointView>>("/v1/endpoints")
            .unwrap()
            .len(),
        4
    );
    ghost.deleted.set(true);
    drop(ghost);
    wait_for("endpoint of a vanished pod collected", || {
        client
            .get::<Vec<EndpointView>>("/v1/endpoints")
            .unwrap()
            .len()
            == 3
    });
    assert_eq!(links_in(&node).len(), 3);

    // 8. DEL, twice; everything of the pods is gone.
    for p in [&deathstar, &tiefighter, &xwing] {
        let (ok, v) = p.del();
        assert!(ok, "DEL: {v}");
        let (ok, v) = p.del();
        assert!(ok, "second DEL: {v}");
    }
    assert!(links_in(&node).is_empty(), "{:?}", links_in(&node));
    assert!(
        client
            .get::<Vec<EndpointView>>("/v1/endpoints")
            .unwrap()
            .is_empty()
    );
    assert!(maps.endpoints().unwrap().is_empty());
    assert!(maps.all_policy_entries().unwrap().is_empty());
    assert!(datapath::loader::links(&spec.pins).unwrap().is_empty());
    let ipam: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec.state.join("ipam.json")).unwrap()).unwrap();
    assert!(ipam["allocated"].as_object().unwrap().is_empty());
    agent.stop();
    assert!(!spec.socket.exists(), "socket removed on SIGTERM");
}
