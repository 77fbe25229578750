//! Every size, interval and default of the exporter, with the reason for it.

use std::time::Duration;

/// Flow ring capacity: Hubble's default `--hubble-event-buffer-capacity`.
pub const RING_CAPACITY: u64 = 4095;

/// Default gRPC listen address. 4244 is the Hubble agent's TCP port (the
/// relay's default peer port); the demo serves on 4245 so a plain `hubble
/// observe` reaches it without a relay.
pub const LISTEN_ADDRESS: &str = "127.0.0.1:4244";

/// Default Prometheus listen address: Hubble's `--hubble-metrics-server` port.
pub const METRICS_ADDRESS: &str = "127.0.0.1:9965";

/// Events waiting between sources and the decoder. Hubble's auto size is
/// min(NumCPU × 1024, 16384); a fixed 16384 absorbs bursts on any machine.
/// The bound is in events, whatever the batches' sizes (a loss count or a
/// watermark takes one place): at most 16,384 records of at most ~200
/// bytes (header, event struct, 128 captured bytes) plus their batches'
/// spare capacity (a small batch is sent as an exact copy), some 10 MB at
/// worst.
pub const EVENT_QUEUE_SIZE: usize = 16384;

/// Maximum raw events a source hands over in one batch (one channel send),
/// so the per-event cost of the queue stays a few nanoseconds.
pub const SOURCE_BATCH: usize = 256;

/// Raw events the ingest decodes (and counts) before storing them, a
/// chunk at a time: the whole path's code (parse, enrich, metrics, encode,
/// ring) does not fit the instruction cache, each step's does (callgrind:
/// 82 % fewer instruction-cache misses per event at 16). 8, 16 and 32
/// measured within noise of each other, 32 ahead by ~1 %; 32 decoded
/// flows are ~50 KB of scratch, reused.
pub const INGEST_CHUNK: usize = 32;

/// Responses buffered per GetFlows stream before the reader in the ring
/// stops advancing (and starts to fall behind, which is reported as lost).
pub const STREAM_BUFFER: usize = 64;

/// Lost-event notifications to one client are aggregated over this interval
/// (Hubble's `LostEventSendInterval`).
pub const LOST_EVENT_SEND_INTERVAL: Duration = Duration::from_secs(1);

/// Namespaces seen in flows are listed by GetNamespaces for this long
/// (Hubble: 1 h TTL).
pub const NAMESPACE_TTL: Duration = Duration::from_secs(3600);

/// How often a live source tells the pipeline how far it is complete
/// ([`crate::progress::Watermark`]) while nothing arrives, and at most how
/// often it does so while events flow. An idle node's progress markers
/// reach a relay within this plus the marker interval the relay asks for
/// (2 ms) plus [`RINGBUF_PROGRESS_SLACK`]: about 5 ms at worst, inside the
/// 10 ms the relay's follow latency is held to. It costs an idle exporter
/// 500 wakeups a second (a clock read, an empty-ring check, one queue
/// message).
pub const PROGRESS_TICK: Duration = Duration::from_millis(2);

/// After a drain of the BPF ring that found records, the ring-buffer
/// source waits this long before reading again, so that under load it
/// reads (and hands the decoder) one batch per millisecond instead of a
/// few records per kernel wakeup: at 110k events/s that is ~110 records a
/// drain instead of ~1, and a thousand wakeups a second instead of tens of
/// thousands. The ring holds far more than a millisecond's events (4 MiB
/// is ~20,000 records, ~180 ms at that rate); a quiet node's first record
/// is read at once, so this adds at most 1 ms to a busy node's latency.
pub const RINGBUF_GATHER: Duration = Duration::from_millis(1);

/// How far behind the time at which the ring-buffer source found the BPF
/// ring empty it sets its watermark: the longest a datapath program may
/// hold a record between `bpf_ringbuf_reserve` and `bpf_ringbuf_submit`
/// (its `ktime_ns` is read in between). The programs run that stretch as
/// straight-line code in softirq context (a few microseconds with the
/// packet copy); 1 ms also covers hard interrupts taken meanwhile and a
/// short stall of the virtual CPU. The reasoning is in [`crate::progress`].
pub const RINGBUF_PROGRESS_SLACK: Duration = Duration::from_millis(1);

/// How often the kernel's per-CPU lost-event counters are polled.
pub const LOST_COUNTER_POLL: Duration = Duration::from_secs(1);

/// Pace of the synthetic source: it emits what is due every 10 ms, so a
/// rate of a few hundred events per second arrives as a steady trickle of
/// small batches rather than one burst a second.
pub const SYNTHETIC_TICK: Duration = Duration::from_millis(10);

/// How long shutdown waits for open gRPC streams (a following `hubble
/// observe`) to close after the ring is closed; a client that does not go
/// away must not keep the process (and a pod's termination) waiting.
pub const GRPC_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Window over which `flows_rate` in ServerStatus is computed.
pub const FLOWS_RATE_WINDOW_SECS: u64 = 60;

/// Version reported in `hubble-server-version` and ServerStatus. Hubble
/// clients compare its minor version with their own and only warn.
pub const SERVER_VERSION: &str = "1.19.4";

/// How often the enrichment file's modification time is checked, so pods
/// the agent adds get their names within about a second.
pub const ENRICHMENT_RELOAD: Duration = Duration::from_secs(1);

/// How soon the enrichment file is looked at again when a flow carries a
/// workload identity it has no labels for (a pod the agent just added).
pub const ENRICHMENT_STALE_RECHECK: Duration = Duration::from_millis(2);

/// Identities below this are Cilium's reserved ones (host, world, ...);
/// from here on they are allocated to workloads and carry labels.
pub const FIRST_WORKLOAD_IDENTITY: u32 = 256;

/// GetFlows and Peer.Notify streams served at once. Each GetFlows stream
/// is a reader in the ring with [`STREAM_BUFFER`] responses buffered
/// (about 160 KB), so 256 cost some 40 MB at most; a node's streams come
/// from relays (one per relay client) and local `hubble observe`, far
/// fewer than this unless a client leaks them.
pub const MAX_CONCURRENT_STREAMS: usize = 256;

/// Calls whose handler runs at once (a unary call until it answers, a
/// stream until it starts). Handlers here take microseconds, so 256 at once
/// is a flood; beyond it calls are shed with RESOURCE_EXHAUSTED, not queued.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// Longest a unary call (ServerStatus, GetNodes, GetNamespaces) may take.
/// They read in-memory figures; 10 s is far beyond any healthy answer and
/// below the Hubble CLI's 12 s, so a client reads the reason, not its own
/// timeout. Streams are exempt: a follow lasts as long as the client wants.
pub const UNARY_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 keepalive ping interval to clients: a relay or `hubble observe`
/// that vanished without closing its connection (node lost, partition)
/// would otherwise hold its follow stream, and its stream slot, forever;
/// 30 s also keeps an idle follow alive through NATs and load balancers.
pub const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a keepalive ping may stay unanswered before the connection and
/// its streams are dropped: a dead client's slots are free within 40 s.
pub const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Distinct `policy` label values of `hubble_policy_verdicts_total` (with
/// `--metrics-policy-names`): a policy name per series keeps Prometheus
/// cardinality bounded by the cluster's policies; past this many, values
/// count under `other` so a churn of policies cannot grow it without end.
pub const POLICY_METRIC_NAMES_MAX: usize = 100;

/// Hubble metrics served when `--metrics` is not given. Cilium's Helm chart
/// enables none (`hubble.metrics.enabled` is empty, so the agent serves no
/// Hubble metrics until an operator lists them); this exporter keeps the
/// L3/L4 set it has always served, without context labels, so that a
/// plain start still feeds the dashboards. `hubble_lost_events_total` is
/// always served, as in Hubble when any metric is on.
pub const METRICS: &str = "flow drop tcp port-distribution icmp policy";

/// A series of a Hubble metric with context labels (pod, namespace, ip,
/// ...) that has not been counted for this long is removed. Hubble removes
/// a pod's series 1 minute after the pod is deleted; this exporter sees no
/// pod deletions, only flows, so it bounds by time instead: 10 minutes is
/// twice the 5-minute `rate()` window of the dashboards, so a quiet but
/// live series is not dropped between two of its flows in a window, while
/// the series of pods, IPs and workloads that are gone leave within minutes.
pub const METRIC_SERIES_TTL: Duration = Duration::from_secs(600);

/// How often the series of context-labelled metrics are checked against
/// [`METRIC_SERIES_TTL`] (on a counted flow or a scrape, whichever comes
/// first after this interval): a walk of at most
/// [`METRIC_SERIES_MAX`] entries every 30 s costs nothing measurable.
pub const METRIC_SERIES_SWEEP: Duration = Duration::from_secs(30);

/// Context-labelled series per Hubble metric family at most. Past it, a new
/// label combination is counted in a series whose context labels are all
/// `other` (the fixed labels stay), and
/// `flow_exporter_metrics_series_overflow_total{metric}` counts it. 10,000
/// series per family, 7 families, is some 70,000 series per node at worst:
/// within what one Prometheus scrape handles (its default sample limit is
/// unlimited; typical operators' limits are 50k-200k), and large enough
/// for `sourceContext=pod;destinationContext=pod` on a node with ~100 pods
/// talking to each other.
pub const METRIC_SERIES_MAX: usize = 10_000;
