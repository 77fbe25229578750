//! The daemons' Prometheus endpoint: `GET /metrics` answers the OpenMetrics
//! text a daemon encodes from its own registry, `GET /healthz` answers
//! `ok`, anything else is a 404. The port is bound by [`MetricsServer::bind`]
//! at start, so a port already taken stops the daemon with the address in
//! the message instead of leaving it running without metrics; serving stops
//! gracefully when the daemon's shutdown future resolves.
//!
//! The registry is the daemon's (this crate knows no metric): it hands over
//! a function that encodes it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::http::header;
use axum::routing::get;
use tokio::net::TcpListener;

/// The content type of `/metrics`: OpenMetrics 1.0 text, what
/// `prometheus_client`'s text encoder writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound (another process holds the port,
    /// or it is not an address of this host).
    #[error("listen on {addr} for metrics{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// A hint for the common case of a taken port, or empty.
        hint: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server failed while serving.
    #[error("metrics server on {addr}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A bound, not yet serving, metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port, see [`MetricsServer::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind {
                addr,
                hint: if source.kind() == io::ErrorKind::AddrInUse {
                    " (the port is taken: is another instance running? pick another --metrics-address)"
                } else {
                    ""
                },
                source,
            })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(MetricsServer { listener, addr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then finishes the requests in
    /// flight. `encode` is called once per scrape and returns the
    /// OpenMetrics text of the daemon's registry.
    pub async fn serve<E>(
        self,
        encode: E,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), MetricsError>
    where
        E: Fn() -> String + Clone + Send + Sync + 'static,
    {
        let app = axum::Router::new()
            .route(
                "/metrics",
                get(move || {
                    let text = encode();
                    async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text) }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }));
        let addr = self.addr;
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| MetricsError::Serve { addr, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// One HTTP/1.0 GET; the whole response.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_404_then_stops() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(|| "# EOF\n".to_owned(), async move {
            let _ = stop_rx.await;
        }));

        let r = get(addr, "/metrics").await;
        assert!(r.starts_with("HTTP/1.0 200"), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{r}"
        );
        assert!(r.ends_with("\r\n\r\n# EOF\n"), "{r}");
        let r = get(addr, "/healthz").await;
        assert!(r.starts_with("HTTP/1.0 200") && r.ends_with("ok\n"), "{r}");
        let r = get(addr, "/nothing").await;
        assert!(r.starts_with("HTTP/1.0 404"), "{r}");

        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let e = MetricsServer::bind(addr).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("listen on {addr} for metrics")),
            "{text}"
        );
        assert!(text.contains("the port is taken"), "{text}");
        assert!(matches!(e, MetricsError::Bind { .. }));
    }
}
