//! The local cluster: a node is a network namespace run by a real `datapath
//! agent` process (its own private bpffs, state and policy directories, API
//! socket) and a real `flow-exporter` process on the node's pinned ring
//! buffer with the agent's enrichment file; a pod is a network namespace
//! wired by the real `datapath-cni` binary, invoked exactly as a runtime
//! invokes it (run in the node's namespace, `CNI_*` environment, network
//! configuration on stdin). Every piece is a guard: pods are CNI-deleted
//! and their namespaces removed, processes stopped, pins removed and the
//! bpffs unmounted, namespaces and directories deleted, also when a test
//! panics.

use std::cell::Cell;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use datapath::api::{Client, EndpointView, StatusView};
use serde_json::{Value, json};

use crate::bins;
use crate::flows;
use crate::sys::{Bpffs, NODE_SYSCTLS, NetNs, TempDir, unique};

/// How long waits for a condition (agent up, policy applied, a flow seen)
/// may take before the test fails. Generous: these are liveness bounds on
/// a loaded 2-core machine, not performance thresholds.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `ok` until it holds, panicking after [`WAIT`].
pub fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    test_support::wait_for(what, WAIT, ok);
}

/// A child process with its log; SIGTERM (then SIGKILL) on drop, and the
/// tail of its log printed when the test is failing.
#[derive(Debug)]
pub struct Proc {
    /// What it is (for messages).
    pub name: String,
    child: Child,
    /// Its stderr/stdout log.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Self {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log fd"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// SIGTERM, then SIGKILL after 10 s; returns how it ended.
    pub fn stop(&mut self) -> ExitStatus {
        if let Ok(Some(st)) = self.child.try_wait() {
            return st;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait")
    }

    /// SIGKILL and wait: a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("---- {} log (last lines) ----", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's pod CIDR.
    pub pod_cidr: String,
    /// The node's own address (on its loopback; the host identity).
    pub node_ip: Option<Ipv4Addr>,
    /// Trace aggregation (`none`, `low`, `medium`, `max`).
    pub aggregation: String,
    /// Size of the events ring in bytes (default: the agent's).
    pub events_ring_bytes: Option<u32>,
    /// Start a flow exporter on the node's ring.
    pub exporter: bool,
    /// Flows the exporter keeps (2^n − 1).
    pub exporter_ring_capacity: u64,
    /// Membership of a multi-node cluster (underlay, cluster store,
    /// tunnel); `None`: a standalone node with the file store.
    pub cluster: Option<ClusterLink>,
}

/// How a node joins a multi-node cluster (see [`crate::Cluster::multi`]).
#[derive(Debug, Clone)]
pub struct ClusterLink {
    /// The underlay namespace holding the bridge `br0`.
    pub underlay_ns: String,
    /// The node's address on the underlay (`/24`), its node IP.
    pub ip: Ipv4Addr,
    /// The etcd client URL.
    pub kvstore: String,
    /// Lease TTL of the node's registration (`--kvstore-lease-ttl`).
    pub lease_ttl: String,
}

impl NodeOptions {
    /// A node with pod CIDR `pod_cidr` (`a.b.c.0/24`), node address
    /// `a.b.250.1`, medium aggregation and an exporter.
    pub fn new(pod_cidr: &str) -> Self {
        let net: Ipv4Addr = pod_cidr
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("bad pod CIDR {pod_cidr}"));
        let [a, b, _, _] = net.octets();
        Self {
            pod_cidr: pod_cidr.to_string(),
            node_ip: Some(Ipv4Addr::new(a, b, 250, 1)),
            aggregation: "medium".into(),
            events_ring_bytes: None,
            exporter: true,
            exporter_ring_capacity: 65_535,
            cluster: None,
        }
    }
}

/// The result of one CNI invocation.
#[derive(Debug, Clone)]
pub struct CniOutput {
    /// Exit status 0.
    pub ok: bool,
    /// Stdout as JSON (`Null` when empty).
    pub json: Value,
    /// Stderr.
    pub stderr: String,
}

/// One node: its namespace, agent and exporter.
#[derive(Debug)]
pub struct Node {
    /// Node name (also the namespace's name).
    pub name: String,
    /// The node's network namespace.
    pub netns: NetNs,
    /// How it was set up.
    pub opts: NodeOptions,
    /// The node's pin directory (on its private bpffs).
    pub pins: PathBuf,
    /// The agent's state directory (enrichment file, IPAM).
    pub state: PathBuf,
    /// The watched policy directory.
    pub policies: PathBuf,
    /// The agent's API socket.
    pub socket: PathBuf,
    /// The exporter's Observer API address (chosen before the agent starts,
    /// which advertises it in the node registry).
    pub exporter_addr: Option<SocketAddr>,
    /// The address the exporter listens on whenever it runs.
    pub hubble_addr: SocketAddr,
    /// Scratch directory of the node (logs and the above).
    pub dir: PathBuf,
    /// Names of the namespaces made for this node's pods and externals.
    pub made: std::sync::Mutex<Vec<String>>,
    agent: std::sync::Mutex<Option<Proc>>,
    exporter: Option<Proc>,
    bpffs: Option<Bpffs>,
    tmp: Option<TempDir>,
}

pub use test_support::free_port;

impl Node {
    /// Creates the namespace, starts the agent (and the exporter), and waits
    /// until both serve.
    pub fn start(opts: NodeOptions) -> Self {
        let netns = NetNs::new("itn");
        netns.sysctl(NODE_SYSCTLS);
        if let Some(link) = &opts.cluster {
            // A veth from the underlay bridge: `eth0` with the node IP here.
            netns.plug_into_bridge(&link.underlay_ns, &format!("{}/24", link.ip));
        } else if let Some(ip) = opts.node_ip {
            netns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"]);
        }
        let tmp = TempDir::new("it-node-");
        let dir = tmp.path.clone();
        let bpffs = Bpffs::mount(dir.join("bpffs"));
        let mut node = Self {
            name: netns.name.clone(),
            pins: bpffs.mount.join("node"),
            state: dir.join("state"),
            policies: dir.join("policies"),
            socket: dir.join("agent.sock"),
            exporter_addr: None,
            hubble_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
            netns,
            opts,
            made: Default::default(),
            agent: Default::default(),
            exporter: None,
            bpffs: Some(bpffs),
            tmp: Some(tmp),
        };
        std::fs::create_dir_all(&node.policies).expect("policy dir");
        node.start_agent();
        if node.opts.exporter {
            node.start_exporter();
        }
        node
    }

    /// Starts (or restarts) the agent and waits for its API.
    pub fn start_agent(&self) {
        let mut cmd = Command::new(bins::bin("datapath"));
        cmd.args(["agent", "--node-name", &self.name])
            .args(["--pod-cidr", &self.opts.pod_cidr])
            .args(["--aggregation", &self.opts.aggregation])
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--bpffs-dir")
            .arg(&self.pins)
            .arg("--policy-dir")
            .arg(&self.policies)
            .arg("--api-socket")
            .arg(&self.socket)
            .arg("--netns")
            .arg(self.netns.path());
        if let Some(b) = self.opts.events_ring_bytes {
            cmd.args(["--events-ring-bytes", &b.to_string()]);
        }
        if let Some(link) = &self.opts.cluster {
            cmd.args(["--kvstore", "etcd", "--kvstore-endpoints", &link.kvstore])
                .args(["--kvstore-lease-ttl", &link.lease_ttl])
                .args(["--node-ip", &link.ip.to_string()])
                .args(["--tunnel", "vxlan"])
                .args(["--hubble-address", &self.hubble_addr.to_string()]);
        }
        let mut p = Proc::spawn("agent", cmd, &self.dir.join("agent.log"));
        let client = self.client();
        let deadline = Instant::now() + WAIT;
        while client.get::<String>("/v1/healthz").is_err() {
            assert!(p.alive(), "agent exited:\n{}", p.log_text());
            assert!(Instant::now() < deadline, "agent API not up");
            std::thread::sleep(Duration::from_millis(50));
        }
        *self.agent.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
    }

    /// Stops the agent (SIGTERM: programs and pins stay).
    pub fn stop_agent(&self) -> Option<ExitStatus> {
        self.agent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|mut p| p.stop())
    }

    /// A crash of the whole node: agent and exporter SIGKILLed (no
    /// deregistration), then its namespace deleted (pods lose their
    /// uplink). Its pods' namespaces stay until the pods are dropped.
    pub fn crash(&mut self) {
        if let Some(mut p) = self.exporter.take() {
            p.kill();
        }
        self.exporter_addr = None;
        if let Some(mut p) = self.agent.lock().unwrap_or_else(|p| p.into_inner()).take() {
            p.kill();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns.name])
            .output();
    }

    /// The agent's log so far.
    pub fn agent_log(&self) -> String {
        self.agent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Proc::log_text)
            .unwrap_or_default()
    }

    /// Starts the exporter on the node's ring and waits for its API.
    pub fn start_exporter(&mut self) {
        let addr = self.hubble_addr;
        let mut cmd = Command::new(bins::bin("flow-exporter"));
        cmd.arg("--ringbuf")
            .arg(self.pins.join("events"))
            .arg("--lost-counter")
            .arg(self.pins.join("lost_events"))
            .arg("--enrichment")
            .arg(self.state.join("enrichment.json"))
            .args(["--node-name", &self.name])
            .args(["--listen-address", &addr.to_string()])
            .args(["--metrics-address", "off"])
            .args([
                "--ring-capacity",
                &self.opts.exporter_ring_capacity.to_string(),
            ]);
        let mut p = Proc::spawn("flow-exporter", cmd, &self.dir.join("exporter.log"));
        let deadline = Instant::now() + WAIT;
        while !flows::serving(addr) {
            assert!(p.alive(), "exporter exited:\n{}", p.log_text());
            assert!(Instant::now() < deadline, "exporter API not up");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.exporter = Some(p);
        self.exporter_addr = Some(addr);
    }

    /// Stops the exporter.
    pub fn stop_exporter(&mut self) -> Option<ExitStatus> {
        self.exporter_addr = None;
        self.exporter.take().map(|mut p| p.stop())
    }

    /// A client of the agent's API.
    pub fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    /// The agent's status.
    pub fn status(&self) -> StatusView {
        self.client().get("/v1/status").expect("agent status")
    }

    /// The agent's endpoints.
    pub fn endpoints(&self) -> Vec<EndpointView> {
        self.client().get("/v1/endpoints").expect("agent endpoints")
    }

    /// The pinned maps of the node.
    pub fn maps(&self) -> datapath::Maps {
        datapath::Maps::open(&self.pins).expect("open node maps")
    }

    /// The network configuration a runtime passes to the plugin.
    pub fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "datapath",
            "type": "datapath-cni",
            "agentSocket": self.socket,
        })
    }

    /// One CNI invocation as a runtime makes it: `datapath-cni` run in the
    /// node's namespace with the `CNI_*` environment and `conf` on stdin.
    pub fn cni(
        &self,
        command: &str,
        cid: &str,
        netns: &str,
        args: &str,
        conf: &Value,
    ) -> CniOutput {
        self.cni_env(
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", cid),
                ("CNI_NETNS", netns),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/opt/cni/bin"),
                ("CNI_ARGS", args),
            ],
            conf.to_string().as_bytes(),
        )
    }

    /// The plugin with exactly these environment variables and stdin.
    pub fn cni_env(&self, env: &[(&str, &str)], stdin: &[u8]) -> CniOutput {
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns.path().display()))
            .arg(bins::bin("datapath-cni"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn datapath-cni");
        // The plugin may exit before reading (VERSION): ignore EPIPE.
        let _ = child.stdin.take().expect("stdin").write_all(stdin);
        let out = child.wait_with_output().expect("wait datapath-cni");
        let json = if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "datapath-cni {env:?}: stdout is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
        };
        CniOutput {
            ok: out.status.success(),
            json,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Creates a pod `default/<name>` with `labels` (`k=v,k2=v2`) through
    /// CNI ADD, panicking if it fails.
    pub fn add_pod(&self, name: &str, labels: &str) -> Pod<'_> {
        self.add_pod_with_ports(name, labels, "")
    }

    /// [`Node::add_pod`] for a pod that declares named ports
    /// (`http:8080,dns:53/UDP`: `K8S_POD_PORTS` in `CNI_ARGS`), what a
    /// policy's `port: <name>` resolves to.
    pub fn add_pod_with_ports(&self, name: &str, labels: &str, ports: &str) -> Pod<'_> {
        let ns = NetNs::new("itp");
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ns.name.clone());
        let cid = container_id(name);
        let mut args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name};K8S_POD_LABELS={labels}"
        );
        if !ports.is_empty() {
            args.push_str(&format!(";K8S_POD_PORTS={ports}"));
        }
        let conf = self.conf();
        let out = self.cni("ADD", &cid, &ns.path().to_string_lossy(), &args, &conf);
        assert!(out.ok, "CNI ADD of {name}: {} {}", out.json, out.stderr);
        let addr = out.json["ips"][0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("ADD result without ips: {}", out.json));
        let ip: Ipv4Addr = addr
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("bad address {addr}"));
        // No wait for the exporter: the agent has written the enrichment
        // file before ADD returned, and the exporter re-reads it as soon as
        // it decodes an identity it has no labels for.
        Pod {
            node: self,
            name: name.to_string(),
            conf,
            cid,
            ip,
            result: out.json,
            deleted: Cell::new(false),
            ns,
        }
    }

    /// Writes `yaml` as `<policy dir>/<file>` and waits until the agent has
    /// applied it (a new policy revision without a policy error).
    pub fn apply_policy(&self, file: &str, yaml: &str) {
        let before = self.status().policy_revision;
        std::fs::write(self.policies.join(file), yaml).expect("write policy");
        self.wait_policy_revision(before);
    }

    /// Stores a cluster-wide policy through this node's agent (the cluster
    /// store: every node applies it); the agent's answer.
    pub fn apply_cluster_policy(&self, name: &str, yaml: &str) -> Result<u64, String> {
        let r: Value = self
            .client()
            .post(
                "/v1/policies",
                &datapath::api::PolicyApply {
                    name: name.into(),
                    yaml: yaml.into(),
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(r["revision"].as_u64().unwrap_or(0))
    }

    /// The node registry as this node's agent sees it (node names).
    pub fn registry(&self) -> Vec<String> {
        let v: Vec<datapath::store::NodeRecord> =
            self.client().get("/v1/nodes").expect("agent nodes");
        v.into_iter().map(|n| n.name).collect()
    }

    /// Names of the policies this node's agent has in force.
    pub fn policy_names(&self) -> Vec<String> {
        let v: datapath::api::PolicyView = self.client().get("/v1/policies").expect("policies");
        v.policies.iter().map(|p| p.full_name()).collect()
    }

    /// Removes `<policy dir>/<file>` and waits until the agent has applied
    /// the change.
    pub fn remove_policy(&self, file: &str) {
        let before = self.status().policy_revision;
        std::fs::remove_file(self.policies.join(file)).expect("remove policy");
        self.wait_policy_revision(before);
    }

    fn wait_policy_revision(&self, before: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let st = self.status();
            if st.policy_revision > before {
                assert!(
                    st.policy_error.is_none(),
                    "policy not applied: {:?}",
                    st.policy_error
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "policy not applied in time: {st:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Connects an "external" network namespace to the node (a veth with
    /// `192.168.<subnet>.1/24` on the node and `.2` outside, routes both
    /// ways): traffic from and to it is world/CIDR traffic for the pods.
    pub fn add_external(&self, subnet: u8) -> External {
        let ns = NetNs::new("itx");
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ns.name.clone());
        let node_if = unique("itx");
        let node_ip = Ipv4Addr::new(192, 168, subnet, 1);
        let ip = Ipv4Addr::new(192, 168, subnet, 2);
        self.netns.ip(&[
            "link", "add", &node_if, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        self.netns
            .ip(&["addr", "add", &format!("{node_ip}/24"), "dev", &node_if]);
        self.netns.ip(&["link", "set", &node_if, "up"]);
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["route", "add", "default", "via", &node_ip.to_string()]);
        External { ns, ip, node_ip }
    }

    /// The node's flows as its exporter serves them (the newest `n`).
    pub fn flows(&self, n: u64) -> Vec<Value> {
        flows::get_flows(self.exporter_addr.expect("node has an exporter"), n)
    }

    /// Waits until the exporter serves a flow matching `pred`; returns it.
    pub fn wait_flow(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let fl = self.flows(10_000);
            if let Some(f) = fl.iter().find(|f| pred(f)) {
                return f.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no flow {what} within {WAIT:?}; the newest flows:\n{}",
                fl.iter()
                    .rev()
                    .take(30)
                    .map(flows::line)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Pods are gone already (they borrow the node). Stop the exporter,
        // then the agent, then remove pins, the namespace and the files.
        drop(self.exporter.take());
        drop(self.agent.lock().unwrap_or_else(|p| p.into_inner()).take());
        drop(self.bpffs.take());
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns.name])
            .output();
        drop(self.tmp.take());
    }
}

/// A 64-hex-digit container id unique to this test run.
pub fn container_id(name: &str) -> String {
    let tag = unique(name);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{h:016x}{:0>48}",
        tag.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    )
    .chars()
    .take(64)
    .collect()
}

/// A network namespace outside the pod network, connected to a node.
#[derive(Debug)]
pub struct External {
    /// The namespace.
    pub ns: NetNs,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The node's address towards it.
    pub node_ip: Ipv4Addr,
}

/// A pod created through CNI ADD; CNI DEL on drop (while the agent runs),
/// then its namespace is deleted.
#[derive(Debug)]
pub struct Pod<'a> {
    /// Its node.
    pub node: &'a Node,
    /// Pod name (namespace `default`).
    pub name: String,
    /// The network configuration it was added with.
    pub conf: Value,
    /// CNI_CONTAINERID.
    pub cid: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The ADD result.
    pub result: Value,
    /// Set once DEL succeeded.
    pub deleted: Cell<bool>,
    /// Its network namespace.
    pub ns: NetNs,
}

impl Pod<'_> {
    /// CNI DEL as a runtime sends it (with the ADD result as prevResult).
    pub fn del(&self) -> CniOutput {
        let mut conf = self.conf.clone();
        conf["prevResult"] = self.result.clone();
        let out = self.node.cni(
            "DEL",
            &self.cid,
            &self.ns.path().to_string_lossy(),
            "",
            &conf,
        );
        if out.ok {
            self.deleted.set(true);
        }
        out
    }

    /// CNI CHECK with the ADD result as prevResult.
    pub fn check(&self) -> CniOutput {
        let mut conf = self.conf.clone();
        conf["prevResult"] = self.result.clone();
        self.node.cni(
            "CHECK",
            &self.cid,
            &self.ns.path().to_string_lossy(),
            "",
            &conf,
        )
    }

    /// The pod's namespace handle.
    pub fn netns(&self) -> PathBuf {
        self.ns.path()
    }

    /// The name of the pod's host-side veth (from the ADD result).
    pub fn host_iface(&self) -> String {
        self.result["interfaces"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if !self.deleted.get() {
            let out = self.del();
            if !out.ok && !std::thread::panicking() {
                eprintln!(
                    "CNI DEL of {} failed: {} {}",
                    self.name, out.json, out.stderr
                );
            }
        }
    }
}
