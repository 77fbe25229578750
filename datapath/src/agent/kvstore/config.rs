//! [`KvstoreConfig`]: how the etcd-backed store connects and times its
//! work, from the agent's `--kvstore` flags.

use std::time::Duration;

use crate::defaults;

/// How the etcd-backed store connects and times its work (every default in
/// [`crate::defaults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvstoreConfig {
    /// etcd client URLs (`http://host:port`).
    pub endpoints: Vec<String>,
    /// Cluster name: keys live under `/datapath/<cluster>/`.
    pub cluster: String,
    /// TTL of the node's lease.
    pub lease_ttl: Duration,
    /// How often the lease is renewed (TTL/3 by default).
    pub keepalive_interval: Duration,
    /// Connection timeout.
    pub dial_timeout: Duration,
    /// Timeout of one etcd operation.
    pub op_timeout: Duration,
    /// First and longest wait between reconnection attempts.
    pub backoff: (Duration, Duration),
    /// How long an identity stays unreferenced before it is deleted.
    pub gc_grace: Duration,
    /// How often unreferenced identities are looked for.
    pub gc_interval: Duration,
}

/// A bad `--kvstore` flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFlag(pub String);

impl KvstoreConfig {
    /// The defaults, for `endpoints` and `cluster`.
    pub fn new(endpoints: Vec<String>, cluster: &str) -> Self {
        Self {
            endpoints,
            cluster: cluster.to_string(),
            lease_ttl: defaults::KVSTORE_LEASE_TTL,
            keepalive_interval: defaults::KVSTORE_LEASE_TTL / defaults::KVSTORE_KEEPALIVES_PER_TTL,
            dial_timeout: defaults::KVSTORE_DIAL_TIMEOUT,
            op_timeout: defaults::KVSTORE_OP_TIMEOUT,
            backoff: (defaults::KVSTORE_BACKOFF_MIN, defaults::KVSTORE_BACKOFF_MAX),
            gc_grace: defaults::KVSTORE_GC_GRACE,
            gc_interval: defaults::KVSTORE_GC_INTERVAL,
        }
    }

    /// From the agent's flags: `--kvstore file|etcd` and
    /// `--kvstore-endpoints URL[,URL..]`. `None` for the file store.
    pub fn from_flags(
        kvstore: &str,
        endpoints: &str,
        cluster: &str,
    ) -> Result<Option<Self>, InvalidFlag> {
        match kvstore {
            "" | "file" => Ok(None),
            "etcd" => {
                let eps: Vec<String> = endpoints
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect();
                if eps.is_empty() {
                    return Err(InvalidFlag(
                        "--kvstore etcd needs --kvstore-endpoints http://HOST:PORT[,..]".into(),
                    ));
                }
                if let Some(bad) = eps.iter().find(|e| !e.starts_with("http://")) {
                    return Err(InvalidFlag(format!(
                        "kvstore endpoint {bad:?}: only http:// URLs are supported"
                    )));
                }
                Ok(Some(Self::new(eps, cluster)))
            }
            other => Err(InvalidFlag(format!(
                "--kvstore {other:?}: expected file or etcd"
            ))),
        }
    }

    /// Sets the lease TTL and renews it every TTL/3.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self.keepalive_interval = ttl / defaults::KVSTORE_KEEPALIVES_PER_TTL;
        self
    }

    /// The key prefix, `/datapath/<cluster>/`.
    pub fn prefix(&self) -> String {
        format!("{}/{}/", defaults::KVSTORE_PREFIX_ROOT, self.cluster)
    }

    pub(super) fn endpoints_str(&self) -> String {
        self.endpoints.join(",")
    }
}
