//! TLS for the daemons' gRPC servers and clients, with rustls (ring
//! provider, TLS 1.2 and 1.3, ALPN `h2`, which Go gRPC peers require).
//!
//! * Servers ([`server_config`], [`incoming`]): a certificate and key, and,
//!   for mTLS, the CAs client certificates must chain to. Handshakes run
//!   off the accept loop, so a slow or failing client delays no one.
//! * Clients ([`ClientTls`], [`TlsConnector`]): the CAs that signed the
//!   server (the system roots when none are given), an optional client
//!   certificate for mTLS, the server name to check (chosen per
//!   connection), or no verification at all for `--tls-allow-insecure`.
//!
//! Every file is read and checked when the configuration is loaded, so a
//! missing, unreadable or malformed file fails the start with its path in
//! the message instead of failing the first connection.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::Stream;

/// The suffix of a Hubble server's TLS name (`<node>.<cluster>.` + this).
pub const HUBBLE_SERVER_NAME_SUFFIX: &str = "hubble-grpc.cilium.io";

/// The cluster of a node name without `cluster/` (see [`crate::defaults`]).
pub use crate::defaults::DEFAULT_CLUSTER;
/// How long a server-side handshake may take (see [`crate::defaults`]).
pub use crate::defaults::HANDSHAKE_TIMEOUT;
use crate::defaults::{ACCEPT_ERROR_BACKOFF, ACCEPTED_BACKLOG};

/// The TLS server name of a Hubble node (Cilium's convention):
/// `<node>.<cluster>.hubble-grpc.cilium.io`, with the dots of the node and
/// cluster names turned into `-`; `cluster/node` names the cluster, the
/// default is `default`.
pub fn hubble_server_name(node_name: &str) -> String {
    let (cluster, node) = node_name
        .split_once('/')
        .unwrap_or((DEFAULT_CLUSTER, node_name));
    format!(
        "{}.{}.{HUBBLE_SERVER_NAME_SUFFIX}",
        node.replace('.', "-"),
        cluster.replace('.', "-"),
    )
}

/// A TLS file or setting could not be used. The causes are `source()`s,
/// as `anyhow`'s `{:#}` prints them.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM block of the expected kind.
    #[error("{path}: {problem} (expected a PEM {kind})")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected ("CERTIFICATE", "PRIVATE KEY").
        kind: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused a certificate, key or CA.
    #[error("{what}")]
    Rejected {
        /// What was being set up, naming the files.
        what: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CAs.
    #[error("client CAs {files}: {reason}")]
    ClientCas {
        /// The CA files.
        files: String,
        /// Why.
        reason: String,
    },
    /// A certificate was given without its key, or the other way round, or
    /// a setting needs another one.
    #[error("{0}")]
    Incomplete(&'static str),
    /// Not a valid TLS server name (a DNS name or an IP address).
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate of a PEM file; at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let bad = |problem: String| TlsError::Pem {
        path: path.to_owned(),
        kind: "CERTIFICATE",
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        kind: "PRIVATE KEY",
        problem: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key found".into(),
            e => format!("malformed PEM: {e}"),
        },
    })
}

/// A root store of every certificate in `files`.
pub fn load_roots(files: &[PathBuf]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for f in files {
        for c in load_certs(f)? {
            roots.add(c).map_err(|source| TlsError::Rejected {
                what: format!("CA certificate in {}", f.display()),
                source,
            })?;
        }
    }
    Ok(roots)
}

fn join(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A server configuration: `cert` (with its chain) and `key`; when
/// `client_ca_files` is not empty, every client must present a
/// certificate that chains to one of them (mTLS).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca_files: &[PathBuf],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let p = provider();
    let builder = rustls::ServerConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rejected {
            what: "TLS protocol versions".into(),
            source,
        })?;
    let builder = if client_ca_files.is_empty() {
        builder.with_no_client_auth()
    } else {
        let roots = Arc::new(load_roots(client_ca_files)?);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, p)
            .build()
            .map_err(|e| TlsError::ClientCas {
                files: join(client_ca_files),
                reason: e.to_string(),
            })?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut cfg = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|source| TlsError::Rejected {
            what: format!(
                "server certificate {} with key {}",
                cert.display(),
                key.display()
            ),
            source,
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The TLS connections of `listener` (TCP_NODELAY set), for tonic's
/// `serve_with_incoming*`. Each handshake runs in its own task, bounded by
/// [`HANDSHAKE_TIMEOUT`]; a failed one is logged (a client without a
/// certificate, a plain-text client, a port scan) and never ends the
/// stream. Accepting stops when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> impl Stream<Item = io::Result<tokio_rustls::server::TlsStream<TcpStream>>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait, not spin.
                        tracing::warn!(error = %e, "accepting a TCP connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(client = %peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::warn!(client = %peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// What a client's TLS is made of.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// CAs that signed the server's certificate; empty: the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Client certificate for mTLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// Key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (still checks handshake signatures).
    pub allow_insecure: bool,
}

/// A loaded client TLS configuration; the server name is chosen per
/// connection ([`ClientTls::connector`]). Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field(
                "client_auth",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish()
    }
}

impl ClientTls {
    /// Loads and checks every file of `o`.
    pub fn load(o: &ClientOptions) -> Result<Self, TlsError> {
        let p = provider();
        let builder = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rejected {
                what: "TLS protocol versions".into(),
                source,
            })?;
        let builder = if o.allow_insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
        } else if o.ca_files.is_empty() {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            builder.with_root_certificates(roots)
        } else {
            builder.with_root_certificates(load_roots(&o.ca_files)?)
        };
        let mut cfg = match (&o.cert_file, &o.key_file) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(load_certs(c)?, load_key(k)?)
                .map_err(|source| TlsError::Rejected {
                    what: format!(
                        "client certificate {} with key {}",
                        c.display(),
                        k.display()
                    ),
                    source,
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Incomplete(
                    "a client certificate needs its key and the other way round",
                ));
            }
        };
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ClientTls {
            config: Arc::new(cfg),
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// A connector for `Endpoint::connect_with_connector`: TCP to
    /// `address` (`host:port`), then TLS checking `server_name`. The
    /// endpoint's URI only carries settings; give it an `http://` scheme.
    pub fn connector(&self, address: &str, server_name: &str) -> Result<TlsConnector, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
        Ok(TlsConnector {
            config: self.config.clone(),
            address: Arc::from(address),
            name,
        })
    }
}

/// Dials one server over TLS (see [`ClientTls::connector`]).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    address: Arc<str>,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("address", &self.address)
            .field("server_name", &self.name)
            .finish()
    }
}

/// A TLS connection as hyper wants it.
pub type ClientStream = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<tonic::transport::Uri> for TlsConnector {
    type Response = ClientStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<ClientStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: tonic::transport::Uri) -> Self::Future {
        let (config, address, name) =
            (self.config.clone(), self.address.clone(), self.name.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(&*address).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// Accepts any server certificate (`--tls-allow-insecure`), still checking
/// the handshake signatures with `provider`'s algorithms. Shared with the
/// `hubble` CLI, which keeps its own loader for upstream's error messages.
pub fn insecure_verifier(
    provider: Arc<CryptoProvider>,
) -> Arc<dyn rustls::client::danger::ServerCertVerifier> {
    Arc::new(NoVerify(provider))
}

#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
