//! Every size, path and default of the datapath, each with the reason for
//! its value. The kernel-side defaults (`ebpf/include/dp_types.h`) are
//! mirrored in [`ebpf::maps::defaults`] (checked there by the layout test)
//! and re-exported here with their reasons.
//!
//! Depends on nothing else of this crate: the maps depend on it, not the
//! other way round.

use std::time::Duration;

/// Root of the per-node pin directories: a node's maps and links live in
/// `BPFFS_ROOT/<node>/`, so several simulated nodes share one kernel
/// without clashing (ARCHITECTURE.md, process model).
pub const BPFFS_ROOT: &str = "/sys/fs/bpf/datapath";

/// Where bpffs is normally mounted; the agent mounts it there if missing.
pub const BPFFS_MOUNT: &str = "/sys/fs/bpf";

/// Sub-directory of a node's pin directory that holds the pinned TCX links.
pub const LINKS_SUBDIR: &str = "links";

/// `endpoints` capacity: local pods per node. Kubernetes' default is 110
/// pods per node; 4096 leaves room for dense test nodes.
pub const ENDPOINTS_MAX: u32 = 4096;

/// `ipcache` capacity: prefixes known cluster-wide (remote pods, nodes,
/// CIDR rules). Cilium's default is 512 Ki; 64 Ki suits the clusters here.
pub const IPCACHE_MAX: u32 = 65_536;

/// `policy` capacity: resolved entries of all endpoints on the node
/// (Cilium's per-endpoint default is 16 Ki; one shared table here).
pub const POLICY_MAX: u32 = 65_536;

/// `ct4` capacity: tracked connections. Cilium's default global TCP table
/// is 512 Ki; 256 Ki entries of 112 bytes (key + value) ≈ 28 MiB.
pub const CT4_MAX: u32 = 262_144;

/// `lb4_services` capacity: master entries plus backend slots of every
/// service frontend (Cilium's default is 64 Ki).
pub const LB4_SERVICES_MAX: u32 = 65_536;

/// `lb4_backends` capacity: backends of all services (Cilium: 64 Ki).
pub const LB4_BACKENDS_MAX: u32 = 65_536;

/// `lb4_reverse_nat` capacity: frontends (one `rev_nat_id` each).
pub const LB4_REVERSE_NAT_MAX: u32 = 65_536;

/// `lb4_maglev` entries: a table of `DP_LB_MAGLEV_M` (1021, prime) entries
/// for each of `DP_LB_MAGLEV_SERVICES` (256) services, 1 MiB in all. 1021
/// keeps the spread even for up to ~10 backends per Maglev service (the
/// paper wants M above 100 x backends); Cilium's default is 16381.
pub const LB4_MAGLEV_MAX: u32 = ebpf::maps::LB_MAGLEV_M * ebpf::maps::LB_MAGLEV_SERVICES;

/// `lb4_affinity` capacity: client/service pairs with sessionAffinity
/// (LRU: the oldest pairs are forgotten first).
pub const LB4_AFFINITY_MAX: u32 = 65_536;

/// `events` ring size in bytes (power of two, multiple of the page size).
/// 4 MiB holds ~20 000 records of 176–184 bytes: a consumer pause of a
/// second at medium aggregation loses nothing.
pub const EVENTS_RING_BYTES: u32 = ebpf::maps::defaults::EVENTS_RING_BYTES;

/// Monitor aggregation level by default: medium, as in Cilium (new
/// connections and TCP flag changes), so steady traffic gives a bounded
/// event rate.
pub const AGGREGATION: ebpf::maps::Aggregation = ebpf::maps::defaults::AGGREGATION;

/// Medium aggregation re-reports an active flow at most this often (Cilium's
/// `MONITOR_REPORT_INTERVAL`).
pub const REPORT_INTERVAL: Duration =
    Duration::from_secs(ebpf::maps::defaults::REPORT_INTERVAL_S as u64);

/// Drop events per second per CPU before further drop events are only
/// counted (`drop_rl.suppressed`); drops themselves are always counted in
/// `drop_stats`. High enough that a test or a demo never hits it, low enough
/// that a flood cannot fill the ring.
pub const DROP_EVENTS_PER_SEC: u32 = ebpf::maps::defaults::DROP_EVENTS_PER_S;

/// Name of the program attached at TCX ingress of the host-side veth.
pub const PROG_FROM_CONTAINER: &str = "from_container";

/// Name of the program attached at TCX egress of the host-side veth.
pub const PROG_TO_CONTAINER: &str = "to_container";

/// Name of the program attached at TCX ingress of the node's VXLAN device.
pub const PROG_FROM_OVERLAY: &str = "from_overlay";

/// Name of the program attached at TCX ingress of the node's external
/// (underlay) device: NodePort.
pub const PROG_FROM_NETDEV: &str = "from_netdev";

/// Name of the node's VXLAN device: one per node netns, in external
/// (collect_md) mode, so a single device reaches every other node (the
/// programs set the outer destination and the VNI per packet) — Cilium's
/// `cilium_vxlan` in its tunnel mode. Short enough for IFNAMSIZ.
pub const VXLAN_DEVICE: &str = "dp_vxlan";

/// UDP port of the VXLAN overlay: 8472, the Linux kernel's historical
/// default and Cilium's, rather than IANA's 4789, so the overlay does not
/// clash with another VXLAN user on the same underlay.
pub const VXLAN_PORT: u16 = 8472;

/// Bytes VXLAN over IPv4 adds to every packet: outer IPv4 (20) + UDP (8) +
/// VXLAN (8) + inner Ethernet (14) = 50, so pods need an MTU of the
/// underlay's minus this, or every full-size packet travels in fragmented
/// outer UDP (notes/kernel-facts.md §3: ~1.7 instead of ~11 Gbit/s).
pub const VXLAN_OVERHEAD: u32 = 50;

/// The agent's API socket when none is given (one agent per host; tests
/// and simulated nodes pass their own).
pub const API_SOCKET: &str = "/run/datapath/agent.sock";

/// The agent's state directory when none is given: under /run, because the
/// state describes kernel objects that do not survive a reboot either, and
/// bpffs cannot hold regular files.
pub const STATE_DIR: &str = "/run/datapath/state";

/// Name of the enrichment file the agent writes in its state directory
/// (JSON: `flow-exporter --enrichment` reads `.json` as JSON).
pub const ENRICHMENT_FILE: &str = "enrichment.json";

/// The service CIDR every ClusterIP must lie in: Kubernetes' (kubeadm's)
/// default `--service-cluster-ip-range`, so Service files written for a
/// kubeadm cluster apply unchanged.
pub const SERVICE_CIDR: &str = "10.96.0.0/12";

/// Name of the services directory beside the policy directory when
/// `--service-dir` is not given (`/etc/x/policies` → `/etc/x/services`):
/// a node's configuration stays in one place.
pub const SERVICE_DIR_NAME: &str = "services";

/// Name of the IPAM state file in the state directory.
pub const IPAM_FILE: &str = "ipam.json";

/// How often the agent looks at the policy directory. A second is what an
/// operator editing a file perceives as immediate, and reading a handful
/// of small files once a second costs nothing.
pub const POLICY_POLL: Duration = Duration::from_secs(1);

/// Timeout of one API request from the CNI plugin or the CLI: the agent
/// answers in milliseconds; attaching programs takes well under a second.
pub const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The pods' default gateway: a link-local address nobody owns, answered by
/// the datapath's ARP responder with the host-side veth's MAC (as Cilium's
/// 169.254.1.1 in its veth mode with ARP passthrough off).
pub const GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);

/// Cluster name labels and enrichment carry when none is given.
pub const CLUSTER: &str = "default";

/// Kubernetes namespace of a pod whose runtime passes none (podman).
pub const POD_NAMESPACE: &str = "default";

/// Prefix of host-side veth names (`lxc` + 11 hex digits of a hash of the
/// container id and interface, within IFNAMSIZ − 1 = 15 bytes).
pub const HOST_IFACE_PREFIX: &str = "lxc";

/// Name of the etcd-backed store's local copy of the cluster state in the
/// state directory: it lets an agent start (degraded, forwarding with the
/// last known state) while etcd is unreachable.
pub const KVSTORE_CACHE_FILE: &str = "cluster-cache.json";

/// Root of the cluster store's keys in etcd: a cluster's keys live under
/// `/datapath/<cluster>/`, so several clusters (or test runs) share one etcd.
pub const KVSTORE_PREFIX_ROOT: &str = "/datapath";

/// How long connecting to etcd may take before the store gives up (and,
/// with a cache, starts degraded): a loopback or LAN etcd answers in
/// milliseconds; 5 s also covers a leader election.
pub const KVSTORE_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Timeout of one etcd operation (get, put, txn, keep-alive answer). etcd
/// commits in milliseconds; beyond 3 s it is unreachable or paused, and a
/// CNI ADD must not wait much longer for a write that is retried anyway.
pub const KVSTORE_OP_TIMEOUT: Duration = Duration::from_secs(3);

/// TTL of a node's lease: its record, endpoints, ipcache entries and
/// identity references vanish this long after the node stops renewing it.
/// 15 s, as Cilium's kvstore lease: short enough that a dead node's pods
/// stop receiving traffic quickly, long enough to ride out a GC pause.
pub const KVSTORE_LEASE_TTL: Duration = Duration::from_secs(15);

/// Keep-alives per lease TTL: renewing every TTL/3 survives two lost
/// renewals before the lease expires (etcd's own client does the same).
pub const KVSTORE_KEEPALIVES_PER_TTL: u32 = 3;

/// First wait before reconnecting after a lost connection; doubled after
/// every failed attempt up to [`KVSTORE_BACKOFF_MAX`]: quick recovery from a
/// blip without hammering an etcd that is down.
pub const KVSTORE_BACKOFF_MIN: Duration = Duration::from_millis(250);

/// Longest wait between reconnection attempts: a returning etcd is noticed
/// within 5 s.
pub const KVSTORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// An identity no node references is deleted after this long: 60 s covers
/// a pod being recreated (its identity reused, not renumbered) and an
/// agent restart within its lease.
pub const KVSTORE_GC_GRACE: Duration = Duration::from_secs(60);

/// How often every agent looks for unreferenced identities (a quarter of
/// the grace: an identity goes at most 25 % after its grace ends).
pub const KVSTORE_GC_INTERVAL: Duration = Duration::from_secs(15);

/// Quiet time after a change before the cache file is rewritten: a burst of
/// watch events (a resync, a node with many pods) gives one write.
pub const KVSTORE_CACHE_DEBOUNCE: Duration = Duration::from_millis(200);

/// Worker threads of the store's own runtime (client, watch, keep-alive,
/// GC): the work is a few streams and timers; two threads keep the
/// keep-alive on time while another task waits.
pub const KVSTORE_RUNTIME_THREADS: usize = 2;

/// Candidates an identity allocation tries before failing: each conflict
/// means another agent took that number at the same moment, so 64 covers
/// dozens of agents allocating at once.
pub const KVSTORE_ALLOC_ATTEMPTS: usize = 64;

/// How often the agent refreshes its metrics' gauges and kernel counters
/// (one status snapshot, one pass over the counters map, one key walk of
/// each hash/LPM map): often enough for a 15 s scrape, cheap at full maps.
pub const METRICS_REFRESH: Duration = Duration::from_secs(5);

/// The agent's default `--metrics-address`: off, as several simulated nodes
/// share one host (Cilium's agent port is 9962).
pub const METRICS_ADDRESS: &str = "off";
