//! The exporter's TLS flags as an operator meets them: unusable files stop
//! the start with the file named, before anything listens. (TLS and mTLS
//! end to end, with the relay and the CLI: `relay/tests/tls.rs`.)

use std::process::Command;

use test_support::pki::TestPki;

fn start_with(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flow-exporter"))
        .args(["--synthetic", "--metrics-address", "off"])
        .args(["--listen-address", "127.0.0.1:0", "--node-name", "n1"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "ca");
    let good = pki.issue("n1", &["n1.default.hubble-grpc.cilium.io"]);
    let other = pki.issue("n2", &["n2.default.hubble-grpc.cilium.io"]);
    let missing = dir.path().join("missing.pem");
    let os = |p: &std::path::PathBuf| p.as_os_str().to_owned();
    let flag = |f: &str| std::ffi::OsString::from(f);

    let cases = [
        (
            vec![
                flag("--tls-cert-file"),
                os(&missing),
                flag("--tls-key-file"),
                os(&good.key),
            ],
            "missing.pem",
        ),
        (
            // A certificate where the key belongs.
            vec![
                flag("--tls-cert-file"),
                os(&good.cert),
                flag("--tls-key-file"),
                os(&good.cert),
            ],
            "no private key found",
        ),
        (
            // Another certificate's key.
            vec![
                flag("--tls-cert-file"),
                os(&good.cert),
                flag("--tls-key-file"),
                os(&other.key),
            ],
            "n1.pem",
        ),
        (
            vec![
                flag("--tls-cert-file"),
                os(&good.cert),
                flag("--tls-key-file"),
                os(&good.key),
                flag("--tls-client-ca-files"),
                os(&good.key),
            ],
            "n1-key.pem",
        ),
    ];
    for (args, named) in cases {
        let a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_os_str()).collect();
        let (code, err) = start_with(&a);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("gRPC server TLS"), "{err}");
        assert!(err.contains(named), "{args:?}: {named} in {err}");
    }

    // A certificate without its key is a usage error.
    let (code, err) = start_with(&[
        std::ffi::OsStr::new("--tls-cert-file"),
        good.cert.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-key-file"), "{err}");
}
