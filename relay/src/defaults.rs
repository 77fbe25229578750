//! Every size, interval and default of the relay, with the reason for it.
//! Where Hubble's relay has the same knob (`pkg/hubble/relay/defaults`), the
//! value is Hubble's unless the comment says why it differs.

use std::time::Duration;

/// Default gRPC listen address. Hubble's relay port is 4245; loopback by
/// default so a development machine exposes nothing (a cluster deployment
/// passes `--listen-address 0.0.0.0:4245`).
pub const LISTEN_ADDRESS: &str = "127.0.0.1:4245";

/// Default Prometheus listen address. 9966 is the relay's metrics port in
/// Cilium's Helm chart (`hubble.relay.prometheus.port`), next to the
/// exporter's 9965.
pub const METRICS_ADDRESS: &str = "127.0.0.1:9966";

/// Port added to a peer address that has none: the Hubble agent's TCP port.
pub const PEER_PORT: u16 = 4244;

/// The service part of the peer service's TLS server name,
/// `hubble-peer.<cluster>.hubble-grpc.cilium.io` (Hubble's
/// `PeerServiceName`).
pub const PEER_SERVICE_NAME: &str = "hubble-peer";

/// The cluster the relay serves unless `--cluster-name` says otherwise
/// (Hubble's default): it names the peer service's TLS server name.
pub const CLUSTER_NAME: &str = "default";

/// Largest gRPC message a client of the relay decodes: the hubble CLI's
/// 64 MiB, so a GetNodes or GetNamespaces answer of a large cluster (or a
/// flow with big labels) is never refused for size (tonic's own default is
/// 4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Timeout of one dial (TCP connect and HTTP/2 handshake) to a peer
/// (Hubble's `--dial-timeout`).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// First wait after a failed dial; doubles per failure up to
/// [`BACKOFF_MAX`] (gRPC's connection backoff, which Hubble's pool uses).
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Longest wait between two dials of an unreachable peer: a peer that comes
/// back is used again within a minute, and a dead one costs one dial a
/// minute.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How often a connected peer is probed (ServerStatus) so that a peer that
/// died or hung (SIGSTOP, a stuck event loop: its kernel still accepts TCP
/// and ACKs data) is marked unavailable (Hubble's health-check interval).
/// With [`PEER_TIMEOUT`], a hung peer is reported `NODE_UNAVAILABLE` to
/// follow clients within 10 s (`--probe-interval`).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a peer may leave a probe (ServerStatus) or an HTTP/2 keepalive
/// ping unanswered before it counts as hung: a live exporter answers both
/// in milliseconds from its gRPC threads, so 5 s is far beyond a busy
/// node's answer and short enough that a UI shows the node as unavailable
/// while it is (`--peer-timeout`). A fresh connection is used only after it
/// answered a probe within this time: a TCP connect alone succeeds against
/// a stopped process, because the kernel accepts for it.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 keepalive ping interval on peer connections, sent also while no
/// call is open (`keep_alive_while_idle`): it ends every stream on a
/// connection whose peer vanished or hung within this plus
/// [`PEER_TIMEOUT`] (15 s), independently of the probes, and it needs no
/// flow traffic (a quiet node's follow stream is idle for minutes, so a
/// per-stream idle bound would cut healthy quiet nodes; none is used).
/// Not lower, because gRPC servers in other languages reject clients that
/// ping too often (`--peer-keepalive-interval`).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Non-follow requests (`hubble observe --last N`): how long the relay
/// waits for a peer's next response while the time-ordered merge cannot go
/// on without it. A peer silent that long is cut off and named in a
/// `NODE_UNAVAILABLE` event, so a hung node costs the query at most this
/// much instead of the keepalive's 15 s (an exporter answers a non-follow
/// request from its ring in milliseconds). Progress resets it, so a large
/// answer that keeps coming is never cut (`--peer-deadline`).
pub const NON_FOLLOW_PEER_DEADLINE: Duration = Duration::from_secs(5);

/// Wait before reconnecting to the peer service after its Notify stream
/// broke (Hubble's `--retry-timeout`).
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Follow mode: the sorting window. A flow is held at most this long after
/// it reaches the relay while flows of other nodes may still come before
/// it (Hubble's `--sort-buffer-drain-timeout`, 1 s).
pub const SORT_WINDOW: Duration = Duration::from_secs(1);

/// Follow mode: flows held for sorting per client at most; beyond that the
/// oldest is released early (Hubble's `--sort-buffer-len-max`, 100).
pub const SORT_BUFFER_LEN: usize = 100;

/// Identical node errors within this window are merged into one
/// `NODE_ERROR` event naming every node (Hubble's `ErrorAggregationWindow`).
pub const ERROR_AGGREGATION_WINDOW: Duration = Duration::from_secs(10);

/// Responses waiting for one follow client. A client that reads slower
/// than the cluster produces loses the oldest ones beyond this (counted and
/// reported as a `LostEvent`), so a slow client costs at most this many
/// flows of relay memory (about 2.5 MB at ~2.5 KB per enriched flow).
pub const CLIENT_QUEUE_LEN: usize = 1024;

/// Follow requests: responses buffered from each peer stream (by its
/// reader task) before the relay stops reading it (HTTP/2 flow control
/// then pushes back on the peer). Small, because the merge needs only
/// each peer's next flow and a relay short of CPU holds this much per
/// peer of every follow client; large enough to hide one network round
/// trip at high rates.
pub const PEER_BUFFER: usize = 64;

/// Follow requests: most responses a peer stream's reader task hands to
/// the merge at once (all it has decodable without waiting, up to this):
/// one channel message and one wakeup per batch rather than per flow. The
/// peer buffer holds `PEER_BUFFER / PEER_READ_BATCH` batches.
pub const PEER_READ_BATCH: usize = 16;

/// Non-follow requests: most responses the merge reads from a peer's
/// stream at once (all it has decodable without waiting, up to this; it
/// reads a peer only when it has nothing queued from it, so this bounds
/// what it holds per peer). 64 covers what a peer sends in one write (a
/// 32 KiB chunk holds about 45 flows).
pub const INLINE_READ_BATCH: usize = 64;

/// Largest HTTP/2 frame a peer may send the relay (the relay's
/// `SETTINGS_MAX_FRAME_SIZE` on peer connections; HTTP/2's default is
/// 16 KiB). A gRPC server writes its responses in chunks of about 32 KiB
/// (tonic's yield threshold); at the default each went out as two or
/// more frames, each a write on the peer and a read and a frame parse on
/// the relay. 64 KiB carries a chunk in one frame; it is no more memory,
/// since flow control (2 MiB per stream) bounds what a peer sends ahead.
pub const PEER_MAX_FRAME_SIZE: u32 = 64 * 1024;

/// Lost-event reports to one client are aggregated over this interval
/// (Hubble's `LostEventSendInterval`).
pub const LOST_EVENT_SEND_INTERVAL: Duration = Duration::from_secs(1);

/// At most this many unavailable node names are listed in ServerStatus
/// (Hubble's relay does the same, so a broken cluster of thousands of
/// nodes does not produce a huge response).
pub const MAX_UNAVAILABLE_NODES: usize = 10;

/// Timeout of one unary call (ServerStatus, GetNodes, GetNamespaces) to a
/// peer while answering a client: a hung peer must not hang `hubble
/// status` (the Hubble CLI itself gives up after 12 s).
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the pool's connection-state gauge is refreshed even without a
/// state change (Hubble reports every 5 s).
pub const METRICS_REFRESH: Duration = Duration::from_secs(5);

/// Graceful shutdown: how long open client streams may take to end after
/// SIGTERM/SIGINT before the relay exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Version reported in `hubble-relay-version` and ServerStatus. Hubble
/// clients compare its minor version with their own and only warn.
pub const RELAY_VERSION: &str = "1.19.4";

/// Client streaming calls (GetFlows) the relay serves at once. Each costs
/// a client queue ([`CLIENT_QUEUE_LEN`] flows, about 2.5 MB) and one
/// stream to every peer, so 128 bound the relay near 320 MB of queues and
/// each node at 128 streams from this relay, while leaving room for
/// every Hubble UI tab and `hubble observe -f` of a busy cluster.
pub const MAX_CONCURRENT_STREAMS: usize = 128;

/// Client calls whose handler runs at once (every unary call for its whole
/// life, a stream until it starts). Each unary call fans out to every
/// peer, so more than a few dozen at once is a misbehaving client; beyond
/// 128 they are shed with RESOURCE_EXHAUSTED rather than queued.
pub const MAX_CONCURRENT_REQUESTS: usize = 128;

/// Longest a client's unary call (ServerStatus, GetNodes, GetNamespaces)
/// may take: above [`PEER_REQUEST_TIMEOUT`], so the fan-out's own per-peer
/// timeout answers with partial results first, and below the Hubble CLI's
/// 12 s, so the client reads the reason instead of its own timeout.
pub const UNARY_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 keepalive ping interval to the relay's clients: a client that
/// vanished without closing its connection (laptop asleep, partition)
/// would otherwise hold its follow stream and its stream slot forever;
/// 30 s also keeps idle follows alive through load balancers and NATs
/// (which drop idle TCP after 60 s or more).
pub const SERVER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a keepalive ping to a client may stay unanswered before its
/// connection, and every stream on it, is dropped: a dead client's slots
/// are free again within 40 s.
pub const SERVER_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The request metadata key with which the relay asks a peer for progress
/// markers on a follow stream (its value: the interval in milliseconds).
/// Our exporter sends them only when asked (`flow_exporter::progress`); a
/// stock Cilium agent ignores the header and the merge keeps its window.
pub const PROGRESS_HEADER: &str = "x-flow-exporter-progress-ms";

/// How often a peer that is caught up sends a progress marker: the longest
/// an idle node's marker keeps a busy node's flow waiting (plus the hop), a
/// few milliseconds against the 1 s window it replaces. Each marker is a
/// ~30-byte message, only while the node's ingest advanced.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(2);
