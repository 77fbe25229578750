//! Connecting to a Hubble server: `host:port`, `unix:///path`, `tls://…` or
//! `--tls`, with rustls (ring provider) for TLS: system roots or
//! `--tls-ca-cert-files`, optional client certificate, `--tls-server-name`,
//! `--tls-allow-insecure`, ALPN `h2` (Go gRPC servers require it). The dial
//! is bounded by `--timeout`; unary calls carry `--request-timeout`; basic
//! auth adds an `authorization` header to every call.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::config::ServerOptions;
use crate::defaults;

/// A connected channel plus per-call settings.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The gRPC channel.
    pub channel: Channel,
    /// What upstream prints as the target (address without `tls://`).
    pub target: String,
    request_timeout: Duration,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Conn {
    /// A request for a unary call (with `--request-timeout`).
    pub fn unary<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = self.stream(msg);
        r.set_timeout(self.request_timeout);
        r
    }

    /// A request for a streaming call (no deadline).
    pub fn stream<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(a) = &self.auth {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Splits `host:port` (`[v6]:port`, a port-less host gets 443).
fn host_port(addr: &str) -> anyhow::Result<(String, u16)> {
    let addr = addr.strip_prefix("dns:///").unwrap_or(addr);
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .with_context(|| format!("invalid server address {addr:?}"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p
                .parse()
                .with_context(|| format!("invalid port in server address {addr:?}"))?,
            None => defaults::DEFAULT_PORT,
        };
        return Ok((host.to_owned(), port));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_owned(),
            p.parse()
                .with_context(|| format!("invalid port in server address {addr:?}"))?,
        )),
        _ => Ok((addr.to_owned(), defaults::DEFAULT_PORT)),
    }
}

/// The rustls client configuration for these options.
pub fn tls_config(o: &ServerOptions) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("configuring TLS versions")?;
    let builder = if o.tls_allow_insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(svc::tls::insecure_verifier(provider))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if o.tls_ca_cert_files.is_empty() {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        } else {
            for path in &o.tls_ca_cert_files {
                let pem =
                    std::fs::read(path).with_context(|| format!("cannot load cert '{path}'"))?;
                let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .ok()
                    .filter(|c: &Vec<_>| !c.is_empty())
                    .with_context(|| {
                        format!("cannot process cert '{path}': must be a PEM encoded certificate")
                    })?;
                for c in certs {
                    roots.add(c).with_context(|| {
                        format!("cannot process cert '{path}': must be a PEM encoded certificate")
                    })?;
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut cfg = if !o.tls_client_cert_file.is_empty() && !o.tls_client_key_file.is_empty() {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&o.tls_client_cert_file)
                .and_then(|i| i.collect::<Result<_, _>>())
                .with_context(|| {
                    format!("loading client certificate {}", o.tls_client_cert_file)
                })?;
        let key = PrivateKeyDer::from_pem_file(&o.tls_client_key_file)
            .with_context(|| format!("loading client key {}", o.tls_client_key_file))?;
        builder
            .with_client_auth_cert(certs, key)
            .context("using the client certificate")?
    } else {
        builder.with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// Connects (eagerly, within `--timeout`).
pub async fn connect(o: &ServerOptions) -> anyhow::Result<Conn> {
    if o.port_forward {
        anyhow::bail!(
            "--port-forward is not supported by this hubble CLI: run `kubectl port-forward -n kube-system svc/hubble-relay 4245:80` and use --server localhost:4245"
        );
    }
    let target = o.target().to_owned();
    let auth = if !o.basic_auth_username.is_empty() && !o.basic_auth_password.is_empty() {
        let token =
            base64(format!("{}:{}", o.basic_auth_username, o.basic_auth_password).as_bytes());
        Some(
            format!("Basic {token}")
                .parse()
                .context("encoding basic auth credentials")?,
        )
    } else {
        None
    };
    let fut = dial(o, &target);
    let channel = match tokio::time::timeout(o.timeout, fut).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(e).with_context(|| {
                format!("failed to connect to '{}' (is a Hubble server or relay listening there? set --server or HUBBLE_SERVER)", o.server)
            });
        }
        Err(_) => anyhow::bail!(
            "failed to connect to '{}': no connection within {} (--timeout)",
            o.server,
            crate::gotime::format_duration(o.timeout.as_nanos() as i64)
        ),
    };
    Ok(Conn {
        channel,
        target,
        request_timeout: o.request_timeout,
        auth,
    })
}

async fn dial(o: &ServerOptions, target: &str) -> anyhow::Result<Channel> {
    if let Some(path) = target.strip_prefix("unix://") {
        let path = path.to_owned();
        let ep = Endpoint::from_static("http://localhost");
        return Ok(ep
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(p).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(s))
                }
            }))
            .await?);
    }
    let (host, port) = host_port(target)?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let ep = Endpoint::from_shared(format!("http://{authority}"))
        .with_context(|| format!("invalid server address {target:?}"))?
        .connect_timeout(o.timeout)
        .tcp_nodelay(true);
    if !o.use_tls() {
        return Ok(ep.connect().await?);
    }
    let cfg = Arc::new(tls_config(o)?);
    let sni = if o.tls_server_name.is_empty() {
        host.clone()
    } else {
        o.tls_server_name.clone()
    };
    let server_name = ServerName::try_from(sni.clone())
        .with_context(|| format!("invalid TLS server name {sni:?}"))?;
    Ok(ep
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let cfg = cfg.clone();
            let name = server_name.clone();
            let addr = (host.clone(), port);
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encodes_like_rfc4648() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            host_port("localhost:4245").unwrap(),
            ("localhost".into(), 4245)
        );
        assert_eq!(host_port("[::1]:4245").unwrap(), ("::1".into(), 4245));
        assert_eq!(host_port("relay").unwrap(), ("relay".into(), 443));
        assert!(host_port("relay:http").is_err());
    }
}
