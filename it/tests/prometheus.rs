//! Privileged: the dashboards and rules of `dashboards/` proven against a
//! real Prometheus (Debian's) scraping a running local cluster.
//!
//! The cluster is the demo's (`scripts/demo-up.sh` with unique names, ports
//! and state directory): etcd, two nodes with their agents and exporters,
//! pods through the CNI plugin, a cluster-wide policy whose drops the
//! traffic loop keeps producing, the relay and an archiver following it;
//! every daemon serves `/metrics`. The test writes a Prometheus config with
//! the job names of `dashboards/prometheus-scrape.yml` (1 s scrapes, the
//! rules of `dashboards/rules.yml`), checks it and the shipped files with
//! `promtool check config` / `check rules`, starts Prometheus on a free
//! loopback port, waits until every target has been scraped twice with
//! `up == 1`, and then evaluates through `/api/v1/query`:
//!
//! - every `targets[].expr` of every panel (rows' nested panels included)
//!   of every `dashboards/*.json`, with template variables replaced by
//!   their "All" value (`allValue`, else `.*`) or their default, and
//!   `$__rate_interval` = `1m`, `$__interval` = `15s`, `$__range` = `5m`;
//! - every recording rule's expression of every `dashboards/*.yml` rule
//!   file as it is;
//! - every alerting rule's expression **without its final threshold
//!   comparison** (`... > 0.9`, `... == 0`): an alert's expression is empty
//!   when nothing is wrong, so its left-hand side is what proves that the
//!   series it watches exist with the labels it uses.
//!
//! An expression that errors or returns no series is retried until a
//! deadline (counters of rare events appear with the traffic, the agents
//! refresh their gauges every few seconds), then the test fails naming
//! each file, panel or rule, and expression. Everything (Prometheus, the
//! demo's processes, namespaces, pins and directories) is removed by guards,
//! also when the test fails.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use it::sys::{TempDir, leftovers, unique};
use it::{bins, require_privileges};
use serde_json::Value;

/// The scrape jobs, as in dashboards/prometheus-scrape.yml, with the demo's
/// metrics port offsets (scripts/demo-up.sh: exporters +0 +1, relay +2,
/// archiver +3, agents +4 +5).
const JOBS: [(&str, &[u16]); 4] = [
    ("flow-exporter", &[0, 1]),
    ("hubble-relay", &[2]),
    ("flow-archiver", &[3]),
    ("datapath-agent", &[4, 5]),
];

/// How long the cluster may take to produce every series (a bound on a
/// wait, not a measured figure).
const SERIES_DEADLINE: Duration = Duration::from_secs(120);

/// A block of `n` consecutive free loopback ports.
fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base.checked_add(n).is_none() || base < 20_000 {
            continue;
        }
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} consecutive free loopback ports");
}

/// The demo cluster; dropping it runs scripts/demo-down.sh with the same
/// overrides.
struct Demo {
    env: Vec<(&'static str, String)>,
    prefix: String,
    _state: TempDir,
}

impl Demo {
    fn up(metrics_base: u16) -> Demo {
        let prefix = unique("pm");
        let state = TempDir::new("it-prom-demo");
        let p = free_ports(5);
        let env = vec![
            ("BIN_DIR", bins::dir().display().to_string()),
            ("DEMO_PREFIX", prefix.clone()),
            ("DEMO_STATE", state.path.join("demo").display().to_string()),
            ("DEMO_PORT", p.to_string()),
            ("DEMO_NODE_PORTS", format!("{} {}", p + 1, p + 2)),
            ("DEMO_ETCD_PORTS", format!("{} {}", p + 3, p + 4)),
            ("DEMO_METRICS", format!("127.0.0.1:{metrics_base}")),
        ];
        let demo = Demo {
            env,
            prefix,
            _state: state,
        };
        let out = demo.script("demo-up.sh");
        assert!(
            out.status.success(),
            "demo-up.sh failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // `just demo` tells where the metrics are.
        for off in [0, 1, 2, 3, 4, 5] {
            let url = format!("http://127.0.0.1:{}/metrics", metrics_base + off);
            assert!(text.contains(&url), "demo-up does not print {url}:\n{text}");
        }
        demo
    }

    fn script(&self, name: &str) -> std::process::Output {
        Command::new(bins::workspace_root().join("scripts").join(name))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let out = self.script("demo-down.sh");
        if !out.status.success() {
            eprintln!(
                "demo-down.sh failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let left = leftovers(&self.prefix);
        if !std::thread::panicking() {
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}

/// A Prometheus process; killed and reaped when dropped (its TSDB lives in
/// the guarded directory).
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let dir = TempDir::new("it-prom");
        let cfg = dir.path.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        promtool(&["check", "config", cfg.to_str().unwrap()]);
        let port = free_ports(1);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.path.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus (./bootstrap.sh installs Debian's)");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `GET /api/v1/query?query=EXPR`: the result vector, or the error text.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", urlencode(expr));
        let body = http_get(self.addr, &path)?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("not JSON ({e}): {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        match &v["data"]["result"] {
            Value::Array(a) => Ok(a.clone()),
            // A scalar or string result is one value.
            other if !other.is_null() => Ok(vec![other.clone()]),
            _ => Ok(vec![]),
        }
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("run promtool (./bootstrap.sh installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.0 GET: the body of a 200 or 400 answer (the API's errors
/// are JSON too).
fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {resp}"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" && status != "400" && status != "422" {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body.to_owned())
}

/// One expression to evaluate and where it comes from.
struct Check {
    origin: String,
    expr: String,
}

/// Grafana's template variables of a dashboard: name → the value used
/// (the "All" value when the variable has one, else its default).
fn variables(d: &Value) -> Vec<(String, String)> {
    let mut v = vec![
        ("__rate_interval".to_owned(), "1m".to_owned()),
        ("__interval".to_owned(), "15s".to_owned()),
        ("__range".to_owned(), "5m".to_owned()),
    ];
    for t in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = t["name"].as_str().unwrap_or("").to_owned();
        let value = if t["includeAll"] == true {
            t["allValue"].as_str().unwrap_or(".*").to_owned()
        } else {
            match &t["current"]["value"] {
                Value::String(s) => s.clone(),
                Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or("").to_owned(),
                _ => String::new(),
            }
        };
        v.push((name, value));
    }
    // Longest names first: `$__rate_interval` before `$__range`.
    v.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    v
}

fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut e = expr.to_owned();
    for (n, val) in vars {
        for pat in [
            format!("${{{n}}}"),
            format!("[[{n}]]"),
            format!("${{{n}:regex}}"),
            format!("${n}"),
        ] {
            e = e.replace(&pat, val);
        }
    }
    e
}

fn panel_checks(file: &str, d: &Value, out: &mut Vec<Check>) {
    fn walk(file: &str, panels: &Value, vars: &[(String, String)], out: &mut Vec<Check>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(Check {
                        origin: format!(
                            "{file}: panel {:?} (id {}) target {}",
                            p["title"].as_str().unwrap_or(""),
                            p["id"],
                            t["refId"].as_str().unwrap_or("?")
                        ),
                        expr: substitute(expr, vars),
                    });
                }
            }
            walk(file, &p["panels"], vars, out);
        }
    }
    let vars = variables(d);
    walk(file, &d["panels"], &vars, out);
}

/// An alert's expression without its final comparison with a number
/// (`X > 0.9` → `X`), see the module doc.
fn without_threshold(expr: &str) -> String {
    let e = expr.trim();
    for op in ["==", "!=", ">=", "<=", ">", "<"] {
        if let Some(i) = e.rfind(op) {
            let rhs = e[i + op.len()..].trim();
            let rhs = rhs.strip_prefix("bool").map_or(rhs, str::trim);
            if rhs.parse::<f64>().is_ok() {
                return e[..i].trim().to_owned();
            }
        }
    }
    e.to_owned()
}

fn rule_checks(file: &str, y: &serde_yaml::Value, out: &mut Vec<Check>) {
    let groups = y["groups"].as_sequence().cloned().unwrap_or_default();
    for g in &groups {
        for r in g["rules"].as_sequence().into_iter().flatten() {
            let expr = r["expr"].as_str().unwrap_or("").to_owned();
            if let Some(name) = r["record"].as_str() {
                out.push(Check {
                    origin: format!("{file}: recording rule {name}"),
                    expr,
                });
            } else if let Some(name) = r["alert"].as_str() {
                out.push(Check {
                    origin: format!("{file}: alert {name} (without its threshold)"),
                    expr: without_threshold(&expr),
                });
            }
        }
    }
}

/// Every check of every file in `dashboards/`.
fn dashboard_checks(dir: &Path) -> Vec<Check> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut dashboards = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        match f.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let d: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
                check_dashboard_shape(&name, &d);
                dashboards += 1;
                panel_checks(&name, &d, &mut out);
            }
            Some("yml" | "yaml") => {
                let y: serde_yaml::Value = serde_yaml::from_str(&text)
                    .unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
                if y.get("groups").is_some() {
                    promtool(&["check", "rules", f.to_str().unwrap()]);
                    rule_checks(&name, &y, &mut out);
                } else if y.get("scrape_configs").is_some() {
                    promtool(&["check", "config", f.to_str().unwrap()]);
                }
            }
            _ => {}
        }
    }
    assert!(dashboards >= 2, "dashboards missing in {}", dir.display());
    out
}

/// What every dashboard must be: a Prometheus data source variable, every
/// panel and target on `${datasource}`, no hard-coded UID.
fn check_dashboard_shape(name: &str, d: &Value) {
    let vars = d["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "{name}: no `datasource` variable of type prometheus"
    );
    fn walk(name: &str, panels: &Value) {
        for p in panels.as_array().into_iter().flatten() {
            if p["type"] != "row" {
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{name}: panel {:?} does not use ${{datasource}}",
                    p["title"]
                );
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{name}: a target of panel {:?} does not use ${{datasource}}",
                    p["title"]
                );
            }
            walk(name, &p["panels"]);
        }
    }
    walk(name, &d["panels"]);
}

#[test]
fn every_dashboard_query_and_rule_returns_series_from_a_live_cluster() {
    require_privileges!("prometheus", "promtool", "etcd", "jq", "curl");
    let root = bins::workspace_root();
    let dash = root.join("dashboards");
    // The files first: a malformed dashboard fails before any cluster.
    let checks = dashboard_checks(&dash);

    let metrics_base = free_ports(6);
    let demo = Demo::up(metrics_base);

    let mut cfg =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n");
    cfg.push_str(&format!("  - {}\n", dash.join("rules.yml").display()));
    cfg.push_str("scrape_configs:\n");
    let mut targets = 0;
    for (job, offsets) in JOBS {
        let list: Vec<String> = offsets
            .iter()
            .map(|o| format!("\"127.0.0.1:{}\"", metrics_base + o))
            .collect();
        targets += list.len();
        cfg.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ));
    }
    let prom = Prometheus::start(&cfg);

    // Two scrapes of every target, each up.
    let deadline = Instant::now() + SERIES_DEADLINE;
    loop {
        let up = prom.query("count_over_time(up[1m]) >= 2 and up == 1");
        if matches!(&up, Ok(v) if v.len() == targets) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every target scraped twice and up: {up:?}; all: {:?}",
            prom.query("up")
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut failing: Vec<(String, String, String)> = Vec::new();
    loop {
        failing.clear();
        for c in &checks {
            match prom.query(&c.expr) {
                Ok(v) if !v.is_empty() => {}
                Ok(_) => failing.push((c.origin.clone(), c.expr.clone(), "no series".into())),
                Err(e) => failing.push((c.origin.clone(), c.expr.clone(), e)),
            }
        }
        if failing.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let report: Vec<String> = failing
        .iter()
        .map(|(o, e, why)| format!("  {o}\n    {e}\n    → {why}"))
        .collect();
    assert!(
        failing.is_empty(),
        "{} of {} expressions fail:\n{}",
        failing.len(),
        checks.len(),
        report.join("\n")
    );
    eprintln!(
        "{} dashboard and rule expressions return series from {targets} targets",
        checks.len()
    );
    drop(prom);
    drop(demo);
}

#[test]
fn alert_thresholds_are_stripped_and_variables_replaced() {
    assert_eq!(without_threshold("max by (a) (m) > 0.9"), "max by (a) (m)");
    assert_eq!(without_threshold("up{job=\"x\"} == 0"), "up{job=\"x\"}");
    assert_eq!(without_threshold("rate(x[5m])"), "rate(x[5m])");
    let d: Value = serde_json::json!({"templating": {"list": [
        {"name": "instance", "includeAll": true, "allValue": ".*"},
        {"name": "datasource", "type": "datasource", "current": {"value": "prom"}}
    ]}});
    let vars = variables(&d);
    assert_eq!(
        substitute(
            "rate(m{instance=~\"$instance\"}[$__rate_interval]) + ${instance}",
            &vars
        ),
        "rate(m{instance=~\".*\"}[1m]) + .*"
    );
}
