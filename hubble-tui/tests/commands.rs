//! `status`, `list nodes|namespaces`, `watch peers`, environment variables
//! and the config file, against a real exporter gRPC server.

mod common;

use common::{run, run_cmd, start};

#[test]
fn status_compact_dict_table_json() {
    let s = start();
    let r = run(&["status", "--server", &s.addr]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(l[0], format!("Healthcheck (via {}): Ok", s.addr));
    assert_eq!(l[1], "Current/Max Flows: 12/4,095 (0.29%)");
    assert!(l[2].starts_with("Flows/s: "), "{}", l[2]);
    assert_eq!(l.len(), 3, "no Connected Nodes line from a single exporter");
    let r = run(&["status", "--server", &s.addr, "-o", "dict"]);
    assert!(
        r.stdout
            .starts_with("          NUM FLOWS: 12\n          MAX FLOWS: 4,095\n")
    );
    assert!(r.stdout.contains("NUM CONNECTED NODES: N/A\n"));
    let r = run(&["status", "--server", &s.addr, "-o", "table"]);
    assert!(
        r.stdout
            .starts_with("NUM FLOWS   MAX FLOWS   SEEN FLOWS   FLOWS PER SECOND   UPTIME")
    );
    let r = run(&["status", "--server", &s.addr, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["num_flows"], "12");
    assert_eq!(v["max_flows"], "4095");
}

#[test]
fn list_nodes_and_namespaces() {
    let s = start();
    let r = run(&["list", "nodes", "--server", &s.addr]);
    let l: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        l[0],
        "NAME     STATUS      AGE   FLOWS/S   CURRENT/MAX-FLOWS"
    );
    assert!(l[1].starts_with("replay   Connected   "), "{}", l[1]);
    assert!(l[1].ends_with("12/4095 (  0.29%)"), "{}", l[1]);
    let r = run(&["list", "node", "--server", &s.addr, "-o", "wide"]);
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("VERSION   ADDRESS           TLS")
    );
    let r = run(&["list", "nodes", "--server", &s.addr, "-o", "json"]);
    assert!(
        r.stdout.starts_with("[\n  {\n    \"name\": \"replay\",\n"),
        "{}",
        r.stdout
    );
    let r = run(&["list", "namespaces", "--server", &s.addr]);
    assert_eq!(
        r.stdout,
        "NAMESPACE\ndefault\nkube-system\ntelecom\ntelecom\n"
    );
    let r = run(&["list", "namespaces", "--server", &s.addr, "-o", "wide"]);
    assert_eq!(
        r.stdout,
        "NAMESPACE   CLUSTER\ndefault\nkube-system\ntelecom   prod-east\ntelecom   prod-west\n"
    );
    let r = run(&["list", "namespaces", "--server", &s.addr, "-o", "json"]);
    assert!(
        r.stdout
            .contains("\"cluster\": \"prod-east\",\n    \"namespace\": \"telecom\"")
    );
}

#[test]
fn watch_peers_prints_the_node() {
    let s = start();
    let mut child = common::Killed(Some(
        common::hubble()
            .args(["watch", "peers", "--server", &s.addr])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let out = child.0.as_mut().unwrap().stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert_eq!(line, format!("PEER_ADDED   {} replay\n", s.addr));
}

#[test]
fn server_from_env_and_config_file_with_flag_precedence() {
    let s = start();
    let r = run_cmd(
        common::hubble()
            .env("HUBBLE_SERVER", &s.addr)
            .args(["observe", "--last", "1"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("hubble").join("config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "server: {}\ntimeout: 2s\nallowlist:\n  - '{{\"verdict\":[\"DROPPED\"]}}'\n",
            s.addr
        ),
    )
    .unwrap();
    let r = run_cmd(
        common::hubble()
            .env("XDG_CONFIG_HOME", dir.path())
            .args(["observe", "--all"]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().count(),
        3,
        "config allowlist applied: {}",
        r.stdout
    );
    // A flag beats the file; the environment beats the file.
    let r = run_cmd(common::hubble().env("XDG_CONFIG_HOME", dir.path()).args([
        "observe",
        "--server",
        "127.0.0.1:1",
        "--timeout",
        "1s",
    ]));
    assert_eq!(r.code, 1);
    let r = run_cmd(
        common::hubble()
            .env("XDG_CONFIG_HOME", dir.path())
            .env("HUBBLE_SERVER", "127.0.0.1:1")
            .args(["status"]),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
}

#[test]
fn config_set_get_view_reset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yaml");
    let c = cfg.to_str().unwrap();
    assert_eq!(
        run(&["config", "--config", c, "set", "server", "tls://relay:443"]).code,
        0
    );
    assert_eq!(
        run(&["config", "--config", c, "set", "tls-allow-insecure", "true"]).code,
        0
    );
    assert_eq!(
        run(&["config", "--config", c, "get", "server"]).stdout,
        "tls://relay:443\n"
    );
    let view = run(&["config", "--config", c, "view"]).stdout;
    assert!(view.contains("server: tls://relay:443"), "{view}");
    assert!(view.contains("tls-allow-insecure: true"), "{view}");
    assert!(view.contains("timeout: 5s"), "{view}");
    assert_eq!(run(&["config", "--config", c, "reset", "server"]).code, 0);
    assert_eq!(
        run(&["config", "--config", c, "get", "server"]).stdout,
        "localhost:4245\n"
    );
}
