//! Every size, timeout and default of the shared process scaffolding, each
//! with why.

use std::time::Duration;

/// Log filter when `RUST_LOG` is unset: start, stop, reloads and warnings,
/// nothing per flow.
pub const LOG_FILTER: &str = "info";

/// The cluster of a node name without `cluster/`. Cilium's default cluster
/// is called `default`, so the TLS names match an unnamed Cilium cluster's.
pub const DEFAULT_CLUSTER: &str = "default";

/// A server-side handshake that has not finished by then is dropped: it
/// holds a socket and a task, and a real client finishes in milliseconds.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Established TLS connections waiting for the gRPC server to take them:
/// handshakes run off the accept loop, so a burst of clients queues here
/// rather than stalling the listener; the server takes them in microseconds.
pub const ACCEPTED_BACKLOG: usize = 64;

/// Pause after a failed `accept` (out of descriptors and the like), so the
/// accept loop waits for resources instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How long a daemon's shutdown waits for its /metrics server to finish a
/// scrape in flight: a scrape takes milliseconds, so this only bounds a
/// stuck one (a slow scraper must not hold up a pod's termination).
pub const METRICS_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
