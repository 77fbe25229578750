//! Interoperability with an independent gRPC/protobuf stack: the real
//! binary replays `testdata/flows.jsonl`, and `tests/interop/hubble_client.py`
//! (grpcio + Google's protobuf runtime, protos compiled with grpcio-tools)
//! checks health, reflection, ServerStatus, the official JSON mapping of
//! every served flow against the recorded lines, filters and errors.
//!
//! Needs python3 with grpcio, grpcio-tools, grpcio-health-checking and
//! grpcio-reflection (./bootstrap.sh installs them). Missing modules skip
//! the test with a reason, except under CI, where they fail it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_ready() -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import grpc, grpc_tools, grpc_health, grpc_reflection",
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[test]
fn independent_grpc_client_sees_a_hubble_server() {
    if let Err(why) = python_ready() {
        assert!(
            std::env::var_os("CI").is_none(),
            "interop client unavailable under CI: {why}"
        );
        eprintln!("skipped: python grpc modules missing ({why}); run ./bootstrap.sh");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let fixture = format!("{root}/testdata/flows.jsonl");
    let port = test_support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_flow-exporter"))
            .args([
                "--replay",
                &fixture,
                "--ring-capacity",
                "8191",
                "--metrics-address",
                "off",
            ])
            .args(["--node-name", "interop", "--listen-address", &addr])
            .stderr(Stdio::null())
            .spawn()
            .expect("start flow-exporter"),
    );
    test_support::wait_for_listen(addr.parse().expect("addr"), Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let out = Command::new("python3")
        .arg(format!("{root}/tests/interop/hubble_client.py"))
        .args([
            "--server",
            &addr,
            "--fixture",
            &fixture,
            "--proto-dir",
            &format!("{root}/../proto/proto"),
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "interop client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
