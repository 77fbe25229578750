//! `datapath`: the node agent (`datapath agent`) and the admin CLI in the
//! spirit of `cilium`: status, endpoints, identities, policies, services, map dumps
//! and `monitor`, which prints the ring buffer's events directly.
//!
//! Commands that ask the agent use its API socket (`--api-socket`);
//! `bpf ...` and `monitor` read the pinned maps (`--pin-dir`) and work
//! without a running agent.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use datapath::agent::services::{ObjectName, ServiceList, format_table};
use datapath::agent::{Agent, AgentConfig};
use datapath::api::{self, Client, EndpointView, IdentityView, PolicyView, StatusView};
use datapath::cidr::Cidr;
use datapath::maps::{ip4_from_key, names};
use datapath::{AttachTarget, Config, Datapath, LoadOptions, Maps, defaults, loader};

#[derive(Parser)]
#[command(
    name = "datapath",
    about = "eBPF CNI datapath: node agent and admin CLI"
)]
struct Cli {
    /// The node's pin directory (on a bpffs); default: the running agent's,
    /// else BPFFS_ROOT/default.
    #[arg(long, global = true, env = "DATAPATH_PIN_DIR")]
    pin_dir: Option<PathBuf>,
    /// The agent's API socket.
    #[arg(long, global = true, env = "DATAPATH_API_SOCKET", default_value = defaults::API_SOCKET)]
    api_socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the node agent: load or re-adopt the datapath, serve the local
    /// API, apply the policy directory live, write the enrichment file.
    Agent(Box<AgentArgs>),
    /// Agent status, pinned links, configuration and counters.
    Status,
    /// Local endpoints (from the agent).
    Endpoint {
        #[command(subcommand)]
        what: ListCmd,
    },
    /// Security identities (from the agent).
    Identity {
        #[command(subcommand)]
        what: ListCmd,
    },
    /// Policies: the ones in force (from the agent), and cluster-wide
    /// policies applied through the cluster store.
    Policy {
        #[command(subcommand)]
        what: PolicyCmd,
    },
    /// Services: the node's frontends and backends (from the agent), and
    /// cluster-wide Services applied through the cluster store.
    Service {
        #[command(subcommand)]
        what: ServiceCmd,
    },
    /// The cluster's node registry (from the agent's store).
    Node {
        #[command(subcommand)]
        what: ListCmd,
    },
    /// Map inspection (pinned maps; works without an agent).
    Bpf {
        #[command(subcommand)]
        what: BpfCmd,
    },
    /// Print datapath events from the ring buffer, one line each (do not
    /// run while an exporter reads the same ring: one consumer per ring).
    Monitor {
        /// Event types to show (repeatable); default all.
        #[arg(long = "type", short = 't', value_enum)]
        types: Vec<EventKind>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Load (or re-adopt) the programs and maps and attach them to host-side veths.
    Attach {
        /// Host-side veth names.
        ifaces: Vec<String>,
        /// The node's network namespace (/run/netns/NAME); default: this one.
        #[arg(long)]
        netns: Option<PathBuf>,
        /// Trace aggregation: none, low, medium, max.
        #[arg(long, default_value = "medium")]
        aggregation: String,
    },
    /// Detach from host-side veths (removes their link pins).
    Detach {
        /// Host-side veth names.
        ifaces: Vec<String>,
    },
    /// Remove every pin of the node (links and maps).
    Unpin,
}

#[derive(clap::Args)]
struct AgentArgs {
    /// This node's name.
    #[arg(long)]
    node_name: String,
    /// The node's pod CIDR (IPv4).
    #[arg(long)]
    pod_cidr: Cidr,
    /// State directory (cluster state, IPAM, enrichment file); not on bpffs.
    #[arg(long, default_value = defaults::STATE_DIR)]
    state_dir: PathBuf,
    /// The node's pin directory (overrides --pin-dir).
    #[arg(long)]
    bpffs_dir: Option<PathBuf>,
    /// Directory of CiliumNetworkPolicy YAML files, applied live.
    #[arg(long)]
    policy_dir: PathBuf,
    /// Directory of Kubernetes Service (ClusterIP, NodePort) and
    /// EndpointSlice YAML files (`*.yaml`, `*.yml`, `*.json`, several
    /// documents each), applied live; an invalid object keeps its
    /// previous version. Default: `services` beside the policy directory.
    #[arg(long)]
    service_dir: Option<PathBuf>,
    /// The prefix every ClusterIP must lie in.
    #[arg(long, value_name = "CIDR", default_value = defaults::SERVICE_CIDR)]
    service_cidr: Cidr,
    /// The node's network namespace (/run/netns/NAME); default: the agent's.
    #[arg(long)]
    netns: Option<PathBuf>,
    /// Enrichment file for `flow-exporter --enrichment` (default:
    /// STATE_DIR/enrichment.json).
    #[arg(long)]
    enrichment_file: Option<PathBuf>,
    /// Cluster name.
    #[arg(long, default_value = defaults::CLUSTER)]
    cluster: String,
    /// Trace aggregation: none, low, medium, max.
    #[arg(long, default_value = "medium")]
    aggregation: String,
    /// Size of the `events` ring buffer in bytes (a power of two, a
    /// multiple of the page size); a pinned ring of another size is
    /// replaced at start.
    #[arg(long, default_value_t = defaults::EVENTS_RING_BYTES)]
    events_ring_bytes: u32,
    /// Cluster store: `file` (this node only, STATE_DIR/cluster-state.json)
    /// or `etcd` (shared by every node: registry, identities, ipcache,
    /// cluster-wide policies).
    #[arg(long, value_name = "KIND", default_value = "file", value_parser = ["file", "etcd"])]
    kvstore: String,
    /// etcd client URLs, comma-separated (with `--kvstore etcd`).
    #[arg(
        long,
        value_name = "URLS",
        value_delimiter = ',',
        env = "DATAPATH_KVSTORE_ENDPOINTS"
    )]
    kvstore_endpoints: Vec<String>,
    /// TTL of the node's lease in etcd: a node whose agent stops renewing
    /// it disappears from the registry (and its pods from the ipcache)
    /// this long after.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_secs)]
    kvstore_lease_ttl: std::time::Duration,
    /// This node's address on the underlay: its registry entry and the
    /// tunnel endpoint other nodes send its pods' traffic to.
    #[arg(long, value_name = "IPV4")]
    node_ip: Option<Ipv4Addr>,
    /// Overlay to other nodes: `vxlan` (external VXLAN device `dp_vxlan`,
    /// UDP 8472, the source identity in the VNI) or `disabled`. Default:
    /// vxlan with `--kvstore etcd`, else disabled.
    #[arg(long, value_name = "MODE")]
    tunnel: Option<datapath::agent::Tunnel>,
    /// MTU of the pods' interfaces (default: the underlay's minus the 50
    /// bytes of VXLAN with a tunnel, else the kernel's).
    #[arg(long)]
    mtu: Option<u32>,
    /// host:port of this node's flow exporter, announced to the cluster so
    /// a relay on any node's Peer.Notify finds every node (default:
    /// NODE_IP:4244).
    #[arg(long, value_name = "HOST:PORT")]
    hubble_address: Option<String>,
    /// Whether the node itself (the host identity) may reach pods whose
    /// ingress is enforced by a policy, as Cilium's option: `always` (an
    /// implicit allow of the host on every such pod; a deny rule matching
    /// the host still wins), `policy` (only when a rule allows it, e.g.
    /// `fromEntities: [host]`), or `auto` = `always` here, as in Cilium
    /// under Kubernetes (kubelet probes must reach pods).
    #[arg(long, value_name = "MODE", default_value = "auto")]
    allow_localhost: datapath::policy::AllowLocalhost,
    /// Give this group (name or gid) read access to the API socket (mode
    /// 0660 instead of 0600): its members may run `datapath status`,
    /// `endpoint list` and the like; changing calls (endpoints, IPAM,
    /// policies, services) stay limited to root and the agent's user,
    /// checked by the caller's credentials.
    #[arg(long, value_name = "GROUP")]
    api_socket_group: Option<String>,
    /// host:port to serve the agent's Prometheus metrics on (`/metrics`,
    /// Cilium's `cilium_*` names; Cilium's agent uses :9962), or `off`.
    /// Bound in the agent's own network namespace (the host's).
    #[arg(long, value_name = "HOST:PORT|off", default_value = defaults::METRICS_ADDRESS)]
    metrics_address: String,
}

/// A duration in seconds (`15s`, `500ms`, `2m`, or a plain number of seconds).
fn parse_secs(s: &str) -> std::result::Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 15s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    };
    if !(secs > 0.0 && secs < 1e6) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[derive(Subcommand)]
enum ListCmd {
    /// List them.
    List {
        /// Print JSON.
        #[arg(long, short)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// The node's frontends with their backends and state, like `cilium
    /// service list` (ID, Frontend, Service Type, Backend), and the
    /// objects not in force.
    List {
        /// Print JSON.
        #[arg(long, short)]
        json: bool,
    },
    /// Store the Services of a YAML file (with the EndpointSlices of
    /// selector-less ones) in the cluster store, for every node (with
    /// `--kvstore etcd`; on the file store, for this node), one entry per
    /// Service (`services/<ns>/<name>`). Everything is validated first,
    /// also against the services in force: an invalid file changes
    /// nothing.
    Apply {
        /// The YAML file (one or more documents).
        file: PathBuf,
    },
    /// Remove a cluster-wide Service (and its EndpointSlices).
    Delete {
        /// `namespace/name` (a bare name is in `default`).
        name: String,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Show the policies in force, their origin and what is not applied.
    Get {
        /// Print JSON.
        #[arg(long, short)]
        json: bool,
    },
    /// Store a CiliumNetworkPolicy YAML file in the cluster store, for
    /// every node (with `--kvstore etcd`; on the file store, for this
    /// node). It is validated first: an invalid file changes nothing.
    Apply {
        /// The YAML file (one or more documents).
        file: PathBuf,
        /// Name of the entry in the store (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a cluster-wide policy by its entry name.
    Delete {
        /// The name given at apply.
        name: String,
    },
}

#[derive(Subcommand)]
enum BpfCmd {
    /// The endpoints map.
    Endpoint {
        #[command(subcommand)]
        what: ListOnly,
    },
    /// The ipcache map (prefix → identity).
    Ipcache {
        #[command(subcommand)]
        what: ListOnly,
    },
    /// The conntrack map.
    Ct {
        #[command(subcommand)]
        what: ListOnly,
    },
    /// The policy map.
    Policy {
        #[command(subcommand)]
        what: PolicyGet,
    },
    /// The service load-balancing maps (frontends, backend slots).
    Lb {
        #[command(subcommand)]
        what: ListOnly,
    },
}

#[derive(Subcommand)]
enum ListOnly {
    /// List the entries.
    List,
}

#[derive(Subcommand)]
enum PolicyGet {
    /// Entries of one endpoint.
    Get {
        /// Endpoint id.
        ep_id: u16,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EventKind {
    Drop,
    Trace,
    PolicyVerdict,
    /// A service translation of a new connection (pre/post-xlate).
    TraceSock,
}

impl EventKind {
    fn msg_type(self) -> u8 {
        match self {
            Self::Drop => ebpf::msg_type::DROP,
            Self::Trace => ebpf::msg_type::TRACE,
            Self::PolicyVerdict => ebpf::msg_type::POLICY_VERDICT,
            Self::TraceSock => ebpf::msg_type::TRACE_SOCK,
        }
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, each cause once (no backtrace dump with RUST_BACKTRACE).
            eprintln!("datapath: {}", svc::error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // SAFETY: restoring the default SIGPIPE disposition before any thread
    // exists; `datapath ... | head` then ends quietly instead of panicking.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let client = Client::new(&cli.api_socket);
    let explicit_pin_dir = cli.pin_dir.is_some();
    let pin_dir = cli.pin_dir.clone().unwrap_or_else(|| {
        // Not for `agent` (no agent to ask yet) nor `attach` (standalone).
        let ask = !matches!(cli.cmd, Cmd::Agent(_) | Cmd::Attach { .. });
        ask.then(|| client.get::<StatusView>("/v1/status").ok())
            .flatten()
            .map_or_else(
                || PathBuf::from(format!("{}/default", defaults::BPFFS_ROOT)),
                |s| s.pin_dir,
            )
    });
    match cli.cmd {
        Cmd::Agent(a) => run_agent(*a, pin_dir, &cli.api_socket),
        Cmd::Status => status(&client, &pin_dir, explicit_pin_dir),
        Cmd::Endpoint {
            what: ListCmd::List { json },
        } => {
            let eps: Vec<EndpointView> = client.get("/v1/endpoints")?;
            if json {
                return print_json(&eps);
            }
            println!(
                "{:>5}  {:<15}  {:>8}  {:<9} {:<9}  {:<20}  {:<12}  LABELS",
                "ID", "IPV4", "IDENTITY", "INGRESS", "EGRESS", "POD", "IFACE"
            );
            for e in eps {
                let r = &e.record;
                println!(
                    "{:>5}  {:<15}  {:>8}  {:<9} {:<9}  {:<20}  {:<12}  {}",
                    r.ep_id,
                    r.ip,
                    r.identity,
                    enforcing(e.enforcement.ingress),
                    enforcing(e.enforcement.egress),
                    format!("{}/{}", r.namespace, r.pod_name),
                    r.host_iface,
                    e.identity_labels.join(",")
                );
            }
            Ok(())
        }
        Cmd::Identity {
            what: ListCmd::List { json },
        } => {
            let ids: Vec<IdentityView> = client.get("/v1/identities")?;
            if json {
                return print_json(&ids);
            }
            println!("{:>10}  LABELS", "ID");
            for i in ids {
                println!("{:>10}  {}", i.id, i.labels.join(","));
            }
            Ok(())
        }
        Cmd::Node {
            what: ListCmd::List { json },
        } => {
            let nodes: Vec<datapath::store::NodeRecord> = client.get("/v1/nodes")?;
            if json {
                return print_json(&nodes);
            }
            println!(
                "{:<24}  {:<15}  {:<18}  HUBBLE",
                "NAME", "NODE IP", "POD CIDR"
            );
            for n in nodes {
                println!(
                    "{:<24}  {:<15}  {:<18}  {}",
                    n.name,
                    n.ip.map_or_else(|| "-".into(), |i| i.to_string()),
                    n.pod_cidr.to_string(),
                    n.hubble_address.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        Cmd::Policy {
            what: PolicyCmd::Apply { file, name },
        } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("read policy file {}", file.display()))?;
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .context("the file has no name; pass --name")?,
            };
            let r: serde_json::Value = client
                .post(
                    "/v1/policies",
                    &api::PolicyApply {
                        name: name.clone(),
                        yaml,
                    },
                )
                .with_context(|| format!("apply policy {name} from {}", file.display()))?;
            println!("policy {name} applied (revision {})", r["revision"]);
            Ok(())
        }
        Cmd::Policy {
            what: PolicyCmd::Delete { name },
        } => {
            let r: serde_json::Value = client
                .delete(&format!("/v1/policies/{name}"))
                .with_context(|| format!("delete policy {name}"))?;
            if r["removed"] == true {
                println!("policy {name} deleted");
                Ok(())
            } else {
                anyhow::bail!("no cluster policy named {name}")
            }
        }
        Cmd::Policy {
            what: PolicyCmd::Get { json },
        } => {
            let p: PolicyView = client.get("/v1/policies")?;
            if json {
                return print_json(&p);
            }
            println!("revision {}", p.revision);
            if let Some(e) = &p.error {
                println!("NOT APPLIED (last valid policies stay in force): {e}");
            }
            // What each RULE cookie of `datapath bpf policy get` and of the
            // verdict events stands for.
            println!("origins:");
            for (origin, list) in &p.origins {
                let names: Vec<String> = list
                    .iter()
                    .map(|i| {
                        let full = if i.namespace.is_empty() {
                            i.name.clone()
                        } else {
                            format!("{}/{}", i.namespace, i.name)
                        };
                        format!("{full} ({}, revision {})", i.kind, i.revision)
                    })
                    .collect();
                println!("  {origin:#010x} {}", names.join(", "));
            }
            for pol in &p.policies {
                println!(
                    "{} (from {}, cookie {:#010x})",
                    pol.full_name(),
                    pol.origin,
                    pol.cookie()
                );
                if pol.namespace_defaulted {
                    println!(
                        "  warning: no metadata.namespace, taken as `default` (Cilium would apply it clusterwide)"
                    );
                }
                for r in &pol.rules {
                    println!("  selects {}", r.subject);
                    for (name, list) in [
                        ("ingress", &r.ingress),
                        ("ingressDeny", &r.ingress_deny),
                        ("egress", &r.egress),
                        ("egressDeny", &r.egress_deny),
                    ] {
                        for pr in list.iter().flatten() {
                            println!("    {name}: {}", serde_json::to_string(pr)?);
                        }
                    }
                }
            }
            Ok(())
        }
        Cmd::Service {
            what: ServiceCmd::List { json },
        } => {
            let l: ServiceList = client.get("/v1/services")?;
            if json {
                return print_json(&l);
            }
            print!("{}", format_table(&l));
            for e in &l.errors {
                eprintln!("NOT APPLIED (the previous version stays in force): {e}");
            }
            Ok(())
        }
        Cmd::Service {
            what: ServiceCmd::Apply { file },
        } => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("read service file {}", file.display()))?;
            let r: serde_json::Value = client
                .post("/v1/services", &api::ServiceApply { yaml })
                .with_context(|| format!("apply services from {}", file.display()))?;
            for k in r["applied"].as_array().into_iter().flatten() {
                println!("service {} applied", k.as_str().unwrap_or_default());
            }
            Ok(())
        }
        Cmd::Service {
            what: ServiceCmd::Delete { name },
        } => {
            let key = ObjectName::parse(&name)
                .with_context(|| format!("{name:?} is not <namespace>/<name>"))?;
            let r: serde_json::Value = client
                .delete(&format!("/v1/services/{}/{}", key.namespace, key.name))
                .with_context(|| format!("delete service {key}"))?;
            if r["removed"] == true {
                println!("service {key} deleted");
                Ok(())
            } else {
                anyhow::bail!("no cluster service named {key}")
            }
        }
        Cmd::Bpf { what } => bpf(what, &pin_dir),
        Cmd::Monitor { types, count } => monitor(&client, &pin_dir, &types, count),
        Cmd::Attach {
            ifaces,
            netns,
            aggregation,
        } => {
            loader::ensure_bpffs(Path::new(defaults::BPFFS_MOUNT)).context("mount bpffs")?;
            let mut opts = LoadOptions::new(&pin_dir);
            opts.config = Config {
                aggregation: aggregation.parse()?,
                ..Config::default()
            };
            let mut dp = Datapath::load(&opts)
                .with_context(|| format!("load datapath into {}", pin_dir.display()))?;
            println!("maps: {:?}", dp.load_report());
            for iface in ifaces {
                let r = dp
                    .attach(&AttachTarget {
                        netns: netns.clone(),
                        iface: iface.clone(),
                    })
                    .with_context(|| format!("attach datapath to {iface}"))?;
                println!("{iface}: {r:?}");
            }
            Ok(())
        }
        Cmd::Detach { ifaces } => {
            for iface in ifaces {
                let n = loader::detach(&pin_dir, &iface)
                    .with_context(|| format!("detach datapath from {iface}"))?;
                println!("{iface}: {n} link(s) removed");
            }
            Ok(())
        }
        Cmd::Unpin => {
            loader::unpin_all(&pin_dir).with_context(|| format!("unpin {}", pin_dir.display()))
        }
    }
}

fn run_agent(a: AgentArgs, pin_dir: PathBuf, socket: &Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let pin_dir = a.bpffs_dir.unwrap_or(pin_dir);
    // The API socket's path and group are checked before the datapath is
    // touched: a mistake there changes nothing on the node.
    let access = match &a.api_socket_group {
        Some(g) => datapath::server::SocketAccess::group(g)?,
        None => datapath::server::SocketAccess::default(),
    };
    datapath::server::check_socket_path(socket)?;
    let metrics_addr: Option<std::net::SocketAddr> =
        if a.metrics_address == "off" || a.metrics_address.is_empty() {
            None
        } else {
            Some(a.metrics_address.parse().with_context(|| {
                format!(
                    "invalid --metrics-address {:?}: expected host:port or off",
                    a.metrics_address
                )
            })?)
        };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start tokio runtime")?;
    // Bound before the datapath loads: a taken port stops the start.
    let metrics = match metrics_addr {
        Some(addr) => Some(rt.block_on(svc::metrics::MetricsServer::bind(addr))?),
        None => None,
    };
    let kvstore = match a.kvstore.as_str() {
        "etcd" => {
            anyhow::ensure!(
                !a.kvstore_endpoints.is_empty(),
                "--kvstore etcd needs --kvstore-endpoints (e.g. http://127.0.0.1:2379)"
            );
            let mut k = datapath::agent::kvstore::KvstoreConfig::new(
                a.kvstore_endpoints.clone(),
                &a.cluster,
            );
            k.lease_ttl = a.kvstore_lease_ttl;
            Some(k)
        }
        _ => None,
    };
    let tunnel = a.tunnel.unwrap_or(if kvstore.is_some() {
        datapath::agent::Tunnel::Vxlan
    } else {
        datapath::agent::Tunnel::Disabled
    });
    let hubble_address = a
        .hubble_address
        .or_else(|| a.node_ip.map(|ip| format!("{ip}:4244")));
    let cfg = AgentConfig {
        node_ip: a.node_ip,
        allow_localhost: a.allow_localhost,
        hubble_address,
        tunnel,
        mtu: a.mtu,
        kvstore,
        enrichment_file: a
            .enrichment_file
            .unwrap_or_else(|| a.state_dir.join(defaults::ENRICHMENT_FILE)),
        node_name: a.node_name,
        cluster: a.cluster,
        pod_cidr: a.pod_cidr,
        state_dir: a.state_dir,
        pin_dir,
        service_dir: a.service_dir.unwrap_or_else(|| {
            a.policy_dir
                .parent()
                .unwrap_or(Path::new("."))
                .join(defaults::SERVICE_DIR_NAME)
        }),
        service_cidr: a.service_cidr,
        policy_dir: a.policy_dir,
        netns: a.netns,
        datapath: Config {
            aggregation: a.aggregation.parse()?,
            ..Config::default()
        },
        sizes: datapath::loader::MapSizes {
            events_ring_bytes: a.events_ring_bytes,
            ..Default::default()
        },
    };
    let agent = Agent::start(cfg.clone())
        .with_context(|| format!("start agent for node {}", cfg.node_name))?;
    tracing::info!(
        node = %cfg.node_name,
        pin_dir = %cfg.pin_dir.display(),
        enrichment = %cfg.enrichment_file.display(),
        "agent started"
    );
    rt.block_on(datapath::server::serve(agent, socket, &access, metrics))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn enforcing(on: bool) -> &'static str {
    if on { "enforced" } else { "allow-all" }
}

fn open(pin_dir: &Path) -> Result<Maps> {
    Maps::open(pin_dir).with_context(|| {
        format!(
            "open maps in {} (is the datapath loaded? map {} missing?)",
            pin_dir.display(),
            names::ENDPOINTS
        )
    })
}

fn status(client: &Client, pin_dir: &Path, explicit_pin_dir: bool) -> Result<()> {
    let pin_dir = match client.get::<StatusView>("/v1/status") {
        Ok(s) => {
            println!("agent: ok ({})", client.socket().display());
            println!(
                "node: {} (cluster {}), pod CIDR {}",
                s.node, s.cluster, s.pod_cidr
            );
            println!(
                "programs: from_container={} to_container={}",
                s.program_ids.0, s.program_ids.1
            );
            println!(
                "endpoints: {} (re-adopted at start: {}), identities: {}, policies: {} (revision {})",
                s.endpoints, s.endpoints_readopted, s.identities, s.policies, s.policy_revision
            );
            if let Some(e) = &s.policy_error {
                println!("policy error: {e}");
            }
            let k = &s.kvstore;
            println!(
                "kvstore: {} {} ({}), ops {} failed {} outages {} resyncs {} pending writes {}{}",
                k.backend,
                k.endpoints.join(","),
                if k.connected {
                    "connected"
                } else {
                    "DISCONNECTED: forwarding with the last known state"
                },
                k.ops,
                k.failed_ops,
                k.outages,
                k.resyncs,
                k.pending_writes,
                k.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
            let t = &s.tunnel;
            match &t.device {
                Some((dev, idx)) => println!(
                    "tunnel: {} on {dev} (ifindex {idx}, from_overlay={}), node IP {}, pod MTU {}, remote nodes {}",
                    t.mode,
                    t.program_id.unwrap_or(0),
                    t.node_ip.map_or_else(|| "-".into(), |i| i.to_string()),
                    t.pod_mtu
                        .map_or_else(|| "default".into(), |m| m.to_string()),
                    t.remote_nodes
                ),
                None => println!("tunnel: {}", t.mode),
            }
            let lb = &s.load_balancing;
            println!(
                "services: {} ({} frontends, {} backends), NodePort on {}, new connections {} translated {} reverse-translated {}{}",
                lb.services,
                lb.frontends,
                lb.backends,
                if lb.node_port_devices.is_empty() {
                    "-".to_string()
                } else {
                    lb.node_port_devices.join(",")
                },
                lb.new_connections,
                lb.translated,
                lb.reverse_translated,
                lb.error
                    .as_deref()
                    .map(|e| format!(", ERROR: {e}"))
                    .unwrap_or_default()
            );
            for r in &lb.rejected {
                println!("  service rejected: {r}");
            }
            println!("enrichment file: {}", s.enrichment_file.display());
            println!("maps re-adopted at start: {}", s.maps_reused.join(","));
            if explicit_pin_dir {
                pin_dir.to_path_buf()
            } else {
                s.pin_dir
            }
        }
        Err(e) => {
            println!("agent: unreachable: {e}");
            pin_dir.to_path_buf()
        }
    };
    println!("pin dir: {}", pin_dir.display());
    for l in loader::links(&pin_dir)? {
        println!(
            "link {} {} id={} prog={} ifindex={}{}",
            l.iface,
            if l.ingress { "ingress" } else { "egress" },
            l.link_id,
            l.prog_id,
            l.ifindex,
            if l.ifindex == 0 { " (defunct)" } else { "" }
        );
    }
    let maps = open(&pin_dir)?;
    println!("config: {:?}", maps.config()?);
    println!("lost events: {}", maps.lost_events()?);
    println!("suppressed drop events: {}", maps.suppressed_drop_events()?);
    for (reason, s) in maps.drop_stats()? {
        println!(
            "drops reason={reason} ({}) packets={} bytes={}",
            flow_parser::reasons::drop_reason_text(u32::from(reason)),
            s.packets,
            s.bytes
        );
    }
    Ok(())
}

fn bpf(what: BpfCmd, pin_dir: &Path) -> Result<()> {
    let maps = open(pin_dir)?;
    match what {
        BpfCmd::Endpoint {
            what: ListOnly::List,
        } => {
            for e in maps.endpoints()? {
                println!(
                    "{:>5} {:<15} identity={} ifindex={} pod_mac={} node_mac={} ingress={} egress={} audit={}",
                    e.ep_id,
                    e.ip,
                    e.identity,
                    e.ifindex,
                    api::mac_string(&e.pod_mac),
                    api::mac_string(&e.node_mac),
                    enforcing(e.enforce_ingress),
                    enforcing(e.enforce_egress),
                    e.audit
                );
            }
        }
        BpfCmd::Ipcache {
            what: ListOnly::List,
        } => {
            for (ip, len, v) in maps.prefixes()? {
                println!(
                    "{ip}/{len} identity={} tunnel={}",
                    v.identity,
                    Ipv4Addr::from(v.tunnel_ep)
                );
            }
        }
        BpfCmd::Ct {
            what: ListOnly::List,
        } => {
            for (k, v) in maps.ct_entries()? {
                println!(
                    "proto={} {}:{} -> {}:{} fwd={}p/{}b rev={}p/{}b flags={:#x} ids={}->{} eps={}->{} rev_nat={} backend={} expires_ns={}",
                    k.proto,
                    ip4_from_key(k.saddr),
                    k.sport,
                    ip4_from_key(k.daddr),
                    k.dport,
                    v.fwd_packets,
                    v.fwd_bytes,
                    v.rev_packets,
                    v.rev_bytes,
                    v.flags,
                    v.src_identity,
                    v.dst_identity,
                    v.src_ep,
                    v.dst_ep,
                    v.rev_nat_id,
                    v.backend_id,
                    v.expires_ns
                );
            }
        }
        BpfCmd::Lb {
            what: ListOnly::List,
        } => {
            let lb = datapath::lb::LbMaps::open(pin_dir)
                .with_context(|| format!("open service maps in {}", pin_dir.display()))?;
            print!(
                "{}",
                datapath::lb::render_lb_list(&lb.list()?, &lb.backends()?)
            );
            let st = lb.stats()?;
            println!(
                "new connections {}, translated {}, reverse-translated {}",
                st.new_connections, st.translated, st.reverse_translated
            );
        }
        BpfCmd::Policy {
            what: PolicyGet::Get { ep_id },
        } => {
            println!(
                "{:<8} {:>10} {:>5} {:>11}  {:<6} RULE",
                "DIR", "IDENTITY", "PROTO", "PORT", "ACTION"
            );
            for e in maps.policy_entries(ep_id)? {
                println!(
                    "{:<8} {:>10} {:>5} {:>11}  {:<6} {:#010x}",
                    format!("{:?}", e.direction),
                    if e.identity == 0 {
                        "ANY".to_string()
                    } else {
                        e.identity.to_string()
                    },
                    if e.proto == 0 {
                        "ANY".to_string()
                    } else {
                        e.proto.to_string()
                    },
                    if e.proto == 0 || e.port_prefix == 0 {
                        "ANY".to_string()
                    } else if e.port_prefix == 16 {
                        e.port.to_string()
                    } else {
                        format!("{}-{}", e.port, e.last_port())
                    },
                    format!("{:?}", e.action),
                    e.rule
                );
            }
        }
    }
    Ok(())
}

fn monitor(client: &Client, pin_dir: &Path, types: &[EventKind], count: Option<u64>) -> Result<()> {
    use aya::maps::{Map, MapData, RingBuf};
    use flow_parser::{Enricher, Parser, StaticEnrichment};

    let data = MapData::from_pin(pin_dir.join(names::EVENTS))
        .with_context(|| format!("open ring buffer in {}", pin_dir.display()))?;
    let mut ring = RingBuf::try_from(Map::from_map_data(data)?)?;
    // Names, namespaces and labels from the agent when it runs.
    let (enricher, node) = match client.get::<flow_parser::EnrichmentSpec>("/v1/enrichment") {
        Ok(spec) => {
            let node = spec.node_name.clone();
            (
                Enricher::from_static(Arc::new(StaticEnrichment::new(spec)?)),
                node,
            )
        }
        Err(e) => {
            eprintln!("no enrichment (agent unreachable: {e})");
            (Enricher::none(), String::new())
        }
    };
    let mut parser = Parser::new(node, enricher).without_uuids();
    let clock = flow_parser::ClockOffset::from_pair(
        std::time::SystemTime::now(),
        ebpf::clock::boot_time_ns().context("read CLOCK_BOOTTIME")?,
    );
    let wanted: Vec<u8> = types.iter().map(|t| t.msg_type()).collect();
    let mut seen = 0u64;
    eprintln!("listening for events on {}", pin_dir.display());
    loop {
        let mut any = false;
        while let Some(rec) = ring.next() {
            any = true;
            let Some(&kind) = rec.first() else { continue };
            if !wanted.is_empty() && !wanted.contains(&kind) {
                continue;
            }
            match parser.decode(&rec, &clock) {
                Ok(flow) => println!("{}", format_flow(&flow)),
                Err(e) => println!("undecodable event ({} bytes): {e}", rec.len()),
            }
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn endpoint_str(ep: Option<&proto::flow::Endpoint>, ip: &str, port: Option<u32>) -> String {
    let addr = match port {
        Some(p) if p != 0 => format!("{ip}:{p}"),
        _ => ip.to_string(),
    };
    match ep {
        Some(e) if !e.pod_name.is_empty() => {
            format!(
                "{}/{} ({}, ID:{})",
                e.namespace, e.pod_name, addr, e.identity
            )
        }
        Some(e) if e.identity != 0 => format!("{addr} (ID:{})", e.identity),
        _ => addr,
    }
}

fn format_flow(f: &proto::flow::Flow) -> String {
    use proto::flow::{DropReason, Verdict, layer4::Protocol};
    let (sip, dip) = f.ip.as_ref().map_or((String::new(), String::new()), |i| {
        (i.source.clone(), i.destination.clone())
    });
    let (sport, dport) = match f.l4.as_ref().and_then(|l| l.protocol.as_ref()) {
        Some(Protocol::Tcp(t)) => (Some(t.source_port), Some(t.destination_port)),
        Some(Protocol::Udp(u)) => (Some(u.source_port), Some(u.destination_port)),
        _ => (None, None),
    };
    // flow.CiliumEventType.type carries the ebpf message type.
    const DROP: i32 = ebpf::msg_type::DROP as i32;
    const TRACE: i32 = ebpf::msg_type::TRACE as i32;
    const POLICY_VERDICT: i32 = ebpf::msg_type::POLICY_VERDICT as i32;
    const TRACE_SOCK: i32 = ebpf::msg_type::TRACE_SOCK as i32;
    let kind = match f.event_type.as_ref().map(|e| e.r#type) {
        Some(DROP) => "drop",
        Some(TRACE) => "trace",
        Some(POLICY_VERDICT) => "policy-verdict",
        Some(TRACE_SOCK) => match u8::try_from(f.sock_xlate_point).unwrap_or(0) {
            ebpf::xlate_point::PRE_DIRECTION_FWD => "trace-sock pre-xlate-fwd",
            ebpf::xlate_point::POST_DIRECTION_FWD => "trace-sock post-xlate-fwd",
            ebpf::xlate_point::PRE_DIRECTION_REV => "trace-sock pre-xlate-rev",
            ebpf::xlate_point::POST_DIRECTION_REV => "trace-sock post-xlate-rev",
            _ => "trace-sock",
        },
        _ => "event",
    };
    let verdict = Verdict::try_from(f.verdict).map_or("?", |v| v.as_str_name());
    let detail = if f.drop_reason_desc != 0 {
        format!(
            " {}",
            DropReason::try_from(f.drop_reason_desc).map_or("?", |d| d.as_str_name())
        )
    } else {
        String::new()
    };
    let time = f
        .time
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or(String::new(), |t| {
            t.with_timezone(&chrono::Local)
                .format("%b %e %H:%M:%S%.3f")
                .to_string()
        });
    format!(
        "{time} [{kind}] {} -> {} {verdict}{detail} {}",
        endpoint_str(f.source.as_ref(), &sip, sport),
        endpoint_str(f.destination.as_ref(), &dip, dport),
        f.summary
    )
}
