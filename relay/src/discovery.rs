//! Peer discovery through `peer.Peer/Notify`: the peer service first sends
//! every known node as `PEER_ADDED`, then changes. Each notification is
//! applied to the pool at once. When the stream breaks, the relay
//! reconnects after the retry timeout (Hubble's `--retry-timeout`);
//! peers stay in the pool meanwhile (their connections are independent of
//! the peer service), and the service's initial burst re-adds them.
//!
//! As Hubble's relay, a peer service on TCP is dialled with the peers' TLS
//! settings when TLS to peers is on, checking the name
//! `hubble-peer.<cluster>.hubble-grpc.cilium.io` (`--cluster-name`); a
//! unix socket is always plain text.

use std::time::Duration;

use proto::peer::NotifyRequest;
use proto::peer::peer_client::PeerClient;
use svc::tls::ClientTls;
use tonic::transport::{Channel, Endpoint};

use crate::defaults;
use crate::peers::{PeerChange, change_from_notification, normalize_address};
use crate::pool::{Pool, error_chain, status_text};

/// Where and how to reach the peer service.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// `host[:port]` (default port 4244) or `unix:///path`.
    pub address: String,
    /// Timeout of one dial.
    pub dial_timeout: Duration,
    /// Wait before reconnecting after a failure.
    pub retry_timeout: Duration,
    /// TLS to a peer service on TCP (the peers' TLS settings, as Hubble's
    /// relay); `None`: plain text.
    pub tls: Option<ClientTls>,
    /// The cluster whose peer service this is: its certificate must name
    /// [`peer_service_server_name`] of it.
    pub cluster_name: String,
}

impl DiscoveryOptions {
    /// Plain-text discovery on `address` with the default timeouts and
    /// cluster.
    pub fn new(address: impl Into<String>) -> DiscoveryOptions {
        DiscoveryOptions {
            address: address.into(),
            dial_timeout: defaults::DIAL_TIMEOUT,
            retry_timeout: defaults::RETRY_TIMEOUT,
            tls: None,
            cluster_name: defaults::CLUSTER_NAME.to_owned(),
        }
    }
}

/// The TLS server name of `cluster`'s peer service (Cilium's convention):
/// `hubble-peer.<cluster>.hubble-grpc.cilium.io`, dots in the cluster name
/// turned into `-`. Cilium's node certificates carry
/// `*.<cluster>.hubble-grpc.cilium.io`, which covers it.
pub fn peer_service_server_name(cluster: &str) -> String {
    svc::tls::hubble_server_name(&format!("{cluster}/{}", defaults::PEER_SERVICE_NAME))
}

async fn connect(
    address: &str,
    timeout: Duration,
    tls: Option<(&ClientTls, &str)>,
) -> Result<Channel, String> {
    let fut = async {
        if let Some(path) = address.strip_prefix("unix://") {
            let path = path.to_owned();
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_| {
                    let p = path.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(p).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                    }
                }))
                .await
                .map_err(|e| error_chain(&e))
        } else {
            let ep = Endpoint::from_shared(format!("http://{address}"))
                .map_err(|e| format!("invalid peer service address {address:?}: {e}"))?
                .connect_timeout(timeout);
            match tls {
                Some((tls, name)) => {
                    let connector = tls.connector(address, name).map_err(|e| e.to_string())?;
                    ep.connect_with_connector(connector).await
                }
                None => ep.connect().await,
            }
            .map_err(|e| error_chain(&e))
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(format!("dial timed out after {timeout:?}")))
}

/// Applies one change to the pool.
pub fn apply(pool: &Pool, change: PeerChange) {
    match change {
        PeerChange::Upsert(spec) => pool.upsert(spec),
        PeerChange::Delete(name) => {
            pool.remove(&name);
        }
    }
}

/// Follows the peer service forever (until the task is dropped).
pub async fn run(opts: DiscoveryOptions, pool: Pool) {
    let address = match normalize_address(&opts.address) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "invalid --peer-service; discovery disabled");
            return;
        }
    };
    // TLS only over TCP: a unix socket is local and plain text.
    let tls = match &opts.tls {
        Some(t) if !address.starts_with("unix://") => {
            Some((t, peer_service_server_name(&opts.cluster_name)))
        }
        _ => None,
    };
    let tls = tls.as_ref().map(|(t, name)| (*t, name.as_str()));
    if let Some((_, name)) = tls {
        tracing::info!(peer_service = %address, server_name = name, "peer service over TLS");
    }
    loop {
        match follow(&address, &opts, tls, &pool).await {
            Ok(()) => {
                tracing::warn!(peer_service = %address, "peer service ended its Notify stream")
            }
            Err(e) => {
                tracing::warn!(peer_service = %address, error = %e, "peer service unreachable")
            }
        }
        tracing::info!(retry_in = ?opts.retry_timeout, "reconnecting to the peer service later");
        tokio::time::sleep(opts.retry_timeout).await;
    }
}

async fn follow(
    address: &str,
    opts: &DiscoveryOptions,
    tls: Option<(&ClientTls, &str)>,
    pool: &Pool,
) -> Result<(), String> {
    let ch = connect(address, opts.dial_timeout, tls).await?;
    let mut stream = PeerClient::new(ch)
        .notify(NotifyRequest {})
        .await
        .map_err(|s| status_text(&s))?
        .into_inner();
    tracing::info!(peer_service = %address, "following peer changes");
    while let Some(n) = stream.message().await.map_err(|s| status_text(&s))? {
        match change_from_notification(&n) {
            Some(Ok(change)) => apply(pool, change),
            Some(Err(e)) => {
                tracing::warn!(peer = %n.name, error = %e, "ignoring peer with a bad address")
            }
            None => tracing::debug!(?n, "ignoring notification"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_service_name_follows_cilium() {
        assert_eq!(
            peer_service_server_name("default"),
            "hubble-peer.default.hubble-grpc.cilium.io"
        );
        assert_eq!(
            peer_service_server_name("kind.prod"),
            "hubble-peer.kind-prod.hubble-grpc.cilium.io"
        );
    }
}
