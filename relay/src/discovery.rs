//! Peer discovery through `peer.Peer/Notify`: the peer service first sends
//! every known node as `PEER_ADDED`, then changes. Each notification is
//! applied to the pool at once. When the stream breaks, the relay
//! reconnects after the retry timeout (Hubble's `--retry-timeout`);
//! peers stay in the pool meanwhile (their connections are independent of
//! the peer service), and the service's initial burst re-adds them.

use std::time::Duration;

use proto::peer::NotifyRequest;
use proto::peer::peer_client::PeerClient;
use tonic::transport::{Channel, Endpoint};

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
}

async fn connect(address: &str, timeout: Duration) -> Result<Channel, String> {
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
            Endpoint::from_shared(format!("http://{address}"))
                .map_err(|e| format!("invalid peer service address {address:?}: {e}"))?
                .connect_timeout(timeout)
                .connect()
                .await
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
    loop {
        match follow(&address, &opts, &pool).await {
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

async fn follow(address: &str, opts: &DiscoveryOptions, pool: &Pool) -> Result<(), String> {
    let ch = connect(address, opts.dial_timeout).await?;
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
