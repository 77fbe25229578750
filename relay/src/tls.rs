//! TLS with rustls: to peers (the CA that signed the nodes' certificates,
//! optionally the relay's client certificate for mTLS, and the server name
//! of each node), and on the relay's own listener (its certificate,
//! optionally the CAs its clients' certificates must chain to).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no PEM block of the expected kind.
    #[error("{path} holds no PEM {kind}")]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What was expected ("CERTIFICATE", "PRIVATE KEY").
        kind: &'static str,
    },
    /// A certificate was given without its key or the other way round.
    #[error("{0}")]
    Incomplete(&'static str),
}

fn read_pem(path: &Path, kind: &'static str) -> Result<Vec<u8>, TlsError> {
    let b = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8_lossy(&b);
    let ok = match kind {
        "CERTIFICATE" => text.contains("-----BEGIN CERTIFICATE-----"),
        _ => text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----"),
    };
    if !ok {
        return Err(TlsError::NotPem {
            path: path.to_owned(),
            kind,
        });
    }
    Ok(b)
}

fn read_cas(files: &[PathBuf]) -> Result<Certificate, TlsError> {
    let mut pem = Vec::new();
    for f in files {
        pem.extend(read_pem(f, "CERTIFICATE")?);
        pem.push(b'\n');
    }
    Ok(Certificate::from_pem(pem))
}

fn read_identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    Ok(Identity::from_pem(
        read_pem(cert, "CERTIFICATE")?,
        read_pem(key, "PRIVATE KEY")?,
    ))
}

/// TLS towards the peers. Without it the relay dials peers in plain text.
#[derive(Debug, Clone)]
pub struct ClientTls {
    ca: Certificate,
    identity: Option<Identity>,
}

impl ClientTls {
    /// Loads the peers' CA bundle and, for mTLS, the relay's client
    /// certificate and key. `None` when no CA file is given (plain text).
    pub fn load(
        ca_files: &[PathBuf],
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<Self>, TlsError> {
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some(read_identity(c, k)?),
            (None, None) => None,
            _ => {
                return Err(TlsError::Incomplete(
                    "--tls-client-cert-file and --tls-client-key-file go together",
                ));
            }
        };
        if ca_files.is_empty() {
            if identity.is_some() {
                return Err(TlsError::Incomplete(
                    "a client certificate needs --tls-hubble-server-ca-files (TLS to peers)",
                ));
            }
            return Ok(None);
        }
        Ok(Some(ClientTls {
            ca: read_cas(ca_files)?,
            identity,
        }))
    }

    /// The client configuration for one node, checking `server_name`.
    pub fn config_for(&self, server_name: &str) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .domain_name(server_name);
        if let Some(id) = &self.identity {
            c = c.identity(id.clone());
        }
        c
    }
}

/// Loads the relay's server TLS: its certificate and key, and, for mTLS,
/// the CAs client certificates must chain to.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca_files: &[PathBuf],
) -> Result<ServerTlsConfig, TlsError> {
    let mut c = ServerTlsConfig::new().identity(read_identity(cert, key)?);
    if !client_ca_files.is_empty() {
        c = c.client_ca_root(read_cas(client_ca_files)?);
    }
    Ok(c)
}
