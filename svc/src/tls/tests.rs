use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::StreamExt as _;

use super::*;
use test_support::pki::{self as test_pki, TestPki};

#[test]
fn hubble_server_names() {
    assert_eq!(
        hubble_server_name("kind-worker"),
        "kind-worker.default.hubble-grpc.cilium.io"
    );
    assert_eq!(
        hubble_server_name("c1.x/node.a"),
        "node-a.c1-x.hubble-grpc.cilium.io"
    );
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "ca");
    let good = pki.issue("server", &["localhost"]);
    let other = pki.issue("other", &["localhost"]);
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();

    let e = server_config(&missing, &good.key, &[]).unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }), "{e}");
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let e = server_config(&garbage, &good.key, &[]).unwrap_err();
    assert!(
        e.to_string().contains("garbage.pem: no certificate found"),
        "{e}"
    );
    // A certificate where the key belongs.
    let e = server_config(&good.cert, &good.cert, &[]).unwrap_err();
    assert!(e.to_string().contains("no private key found"), "{e}");
    // A key that is not the certificate's.
    let e = server_config(&good.cert, &other.key, &[]).unwrap_err();
    assert!(matches!(e, TlsError::Rejected { .. }), "{e}");
    assert!(e.to_string().contains("server.pem"), "{e}");

    let e = server_config(&good.cert, &good.key, std::slice::from_ref(&garbage)).unwrap_err();
    assert!(e.to_string().contains("garbage.pem"), "{e}");
    let e = ClientTls::load(&ClientOptions {
        ca_files: vec![missing],
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().starts_with("reading "), "{e}");
    let e = ClientTls::load(&ClientOptions {
        ca_files: vec![pki.ca_file()],
        cert_file: Some(good.cert.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, TlsError::Incomplete(_)), "{e}");

    assert!(server_config(&good.cert, &good.key, &[pki.ca_file()]).is_ok());
    let c = ClientTls::load(&ClientOptions {
        ca_files: vec![pki.ca_file()],
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        c.connector("127.0.0.1:1", "not a name!").unwrap_err(),
        TlsError::ServerName(_)
    ));
}

/// One server on `incoming`, echoing one line per connection.
async fn echo_server(cfg: Arc<rustls::ServerConfig>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut conns = Box::pin(incoming(l, cfg));
        while let Some(Ok(mut s)) = conns.next().await {
            tokio::spawn(async move {
                let mut b = [0u8; 5];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(&b).await;
                    let _ = s.flush().await;
                }
            });
        }
    });
    addr
}

/// Connects with `tls` and round-trips five bytes.
async fn round_trip(tls: &ClientTls, addr: &str, name: &str) -> io::Result<()> {
    use tower::Service as _;
    let mut c = tls.connector(addr, name).unwrap();
    let mut s = c.call("http://x".parse().unwrap()).await?.into_inner();
    s.write_all(b"hello").await?;
    s.flush().await?;
    let mut b = [0u8; 5];
    s.read_exact(&mut b).await?;
    assert_eq!(&b, b"hello");
    Ok(())
}

fn client(ca: PathBuf, id: Option<&test_pki::Issued>) -> ClientTls {
    ClientTls::load(&ClientOptions {
        ca_files: vec![ca],
        cert_file: id.map(|i| i.cert.clone()),
        key_file: id.map(|i| i.key.clone()),
        allow_insecure: false,
    })
    .unwrap()
}

#[tokio::test]
async fn mutual_tls_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "ca");
    let server = pki.issue("server", &["n1.default.hubble-grpc.cilium.io"]);
    let alice = pki.issue("alice", &["alice.example"]);
    let cfg = server_config(&server.cert, &server.key, &[pki.ca_file()]).unwrap();
    let addr = echo_server(cfg).await;

    let name = "n1.default.hubble-grpc.cilium.io";
    round_trip(&client(pki.ca_file(), Some(&alice)), &addr, name)
        .await
        .unwrap();

    // No client certificate: refused (TLS 1.3 reports it on the first read).
    let e = round_trip(&client(pki.ca_file(), None), &addr, name)
        .await
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    // Wrong server name.
    let e = round_trip(&client(pki.ca_file(), Some(&alice)), &addr, "n2.example")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // A client certificate of another CA.
    let dir2 = tempfile::tempdir().unwrap();
    let other = TestPki::new(dir2.path(), "other");
    let mallory = other.issue("mallory", &["mallory.example"]);
    assert!(
        round_trip(&client(pki.ca_file(), Some(&mallory)), &addr, name)
            .await
            .is_err()
    );

    // The server is still serving after the failed handshakes.
    round_trip(&client(pki.ca_file(), Some(&alice)), &addr, name)
        .await
        .unwrap();

    // --tls-allow-insecure: any name, any CA.
    let insecure = ClientTls::load(&ClientOptions {
        cert_file: Some(alice.cert.clone()),
        key_file: Some(alice.key.clone()),
        allow_insecure: true,
        ..Default::default()
    })
    .unwrap();
    round_trip(&insecure, &addr, "whatever.example")
        .await
        .unwrap();
}
