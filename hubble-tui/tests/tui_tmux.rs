//! `hubble tui` for real: the binary in a tmux pane (200×50) against an
//! in-process exporter serving the fixture. The tests read the screen with
//! `tmux capture-pane`, type keys with `send-keys`, and check what a user
//! would see: the flows, a filter typed at `/` leaving only matching flows,
//! an invalid filter's error, reconnection after the server restarts,
//! `--archive` replay, and a clean exit that leaves the alternate screen.
//!
//! Each test has its own tmux server (a socket in a temporary directory),
//! killed by a drop guard even when the test fails. Without tmux the tests
//! are skipped, except under CI (`CI` set), where they fail.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};

/// A private tmux server with one session `tui`; killed when dropped.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// A tmux server, or `None` (skip) when tmux is not installed outside CI.
    fn new() -> Option<Tmux> {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            if std::env::var_os("CI").is_some() {
                panic!("tmux is required for the TUI tests under CI (./bootstrap.sh installs it)");
            }
            eprintln!("tmux not found: skipping the tmux TUI test");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        Some(Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        })
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts `hubble ARGS` in a 200×50 pane; when it exits, the shell
    /// around it prints its exit status on the main screen.
    fn start(&self, args: &[&str]) {
        self.start_env(args, "");
    }

    /// [`Tmux::start`] with extra `NAME=VALUE` environment.
    fn start_env(&self, args: &[&str], env: &str) {
        let mut line = format!(
            "env -u HUBBLE_SERVER -u HUBBLE_CONFIG -u HUBBLE_COMPAT XDG_CONFIG_HOME=/nonexistent-hubble-test {env} {}",
            env!("CARGO_BIN_EXE_hubble")
        );
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        line.push_str(
            "; echo \"hubble exited with $?\"; stty -a | tr ' ;' '\\n\\n' | grep -qx icanon && echo 'terminal in cooked mode'; exec sleep 600",
        );
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            "200",
            "-y",
            "50",
            &line,
        ]);
    }

    /// The pid of `hubble` under the pane's shell.
    fn hubble_pid(&self) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "tui", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("hubble under the pane's shell")
            .to_owned()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "tui"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "tui", "-l", "--", text]);
    }

    /// Waits (up to 20 s) until the screen satisfies `ok`; panics with the
    /// last screen otherwise.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses `q` and waits for a clean exit: status 0, and the alternate
    /// screen left (the shell's line shows on the main screen, the TUI's
    /// title does not).
    fn quit(&self) {
        self.keys(&["q"]);
        let s = self.wait_for("hubble to exit", |s| s.contains("hubble exited with"));
        assert!(s.contains("hubble exited with 0"), "{s}");
        assert!(
            !s.contains("hubble tui"),
            "alternate screen left on exit:\n{s}"
        );
        self.wait_for("raw mode off", |s| s.contains("terminal in cooked mode"));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The flow rows of the table (they start with the fixture's date).
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| l.starts_with("│May  1 "))
        .collect()
}

#[test]
fn tui_shows_flows_and_applies_a_typed_filter() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    tmux.start(&["tui", "--server", &server.addr]);
    let s = tmux.wait_for("the fixture's 12 flows", |s| table_rows(s).len() == 12);
    assert!(s.contains("● connected"), "{s}");
    assert!(s.contains("flows 12 ·"), "{s}");
    assert!(s.contains("default/tiefighter"), "{s}");
    assert!(s.contains("top talkers by pod"), "{s}");

    // Type a filter at `/`.
    tmux.keys(&["/"]);
    tmux.type_text("--verdict DROPPED");
    tmux.wait_for("the filter editor", |s| {
        s.contains("filter> --verdict DROPPED")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("only dropped flows", |s| {
        s.contains("filter: --verdict DROPPED")
            && s.contains("flows 3 ·")
            && table_rows(s).len() == 3
    });
    for row in table_rows(&s) {
        assert!(
            row.contains(" DROPPED ") || row.contains(" DENIED "),
            "{row}"
        );
    }
    assert!(!s.contains("FORWARDED"), "{s}");
    assert!(!s.contains("tiefighter"), "{s}");

    // An invalid filter: the error shows, the old filter and flows stay.
    tmux.keys(&["/", "C-u"]);
    tmux.type_text("--verdict NOPE");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the filter error", |s| s.contains("error: "));
    assert!(s.contains("NOPE"), "{s}");
    assert_eq!(table_rows(&s).len(), 3, "{s}");

    // Detail pane of the selected (newest) flow, and the help overlay.
    tmux.keys(&["Escape", "Enter"]);
    let s = tmux.wait_for("the detail pane", |s| {
        s.contains("drop_reason_desc: POLICY_DENY")
    });
    assert!(s.contains("\"uuid\": \"f11\""), "{s}");
    tmux.keys(&["?"]);
    tmux.wait_for("the help overlay", |s| {
        s.contains("this help (any key closes it)")
    });
    tmux.keys(&["Escape"]);
    tmux.quit();
}

/// One more flow than the fixture, a second after its last.
fn later_flow() -> proto::flow::Flow {
    let line = std::fs::read_to_string(common::fixture())
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let res: GetFlowsResponse = serde_json::from_str(&line).unwrap();
    let Some(ResponseTypes::Flow(mut f)) = res.response_types else {
        panic!("a flow");
    };
    f.uuid = "f13".into();
    if let Some(t) = f.time.as_mut() {
        t.seconds += 1;
    }
    f
}

#[test]
fn tui_reconnects_when_the_server_comes_back() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    let addr = server.addr.clone();
    tmux.start(&["tui", "--server", &addr]);
    tmux.wait_for("the fixture's 12 flows", |s| table_rows(s).len() == 12);
    drop(server);
    tmux.wait_for("the disconnection", |s| s.contains("● disconnected"));
    // The same address again, with the same flows and one newer.
    let server: Arc<common::Server> = Arc::new(common::start_at(&common::fixture(), 4095, &addr));
    server.observer.push_flows(vec![later_flow()]);
    let s = tmux.wait_for("the reconnection and the new flow", |s| {
        s.contains("● connected") && s.contains("flows 13 ·")
    });
    // Resumed after the newest flow seen: nothing twice.
    assert_eq!(table_rows(&s).len(), 13, "{s}");
    tmux.quit();
}

#[test]
fn tui_replays_an_archive() {
    use archiver::storage::LocalDir;
    use archiver::writer::{ArchiveWriter, WriterOptions};
    use flow_exporter::replay::{self, ReplayEvent};
    let Some(tmux) = Tmux::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalDir::new(dir.path()).unwrap());
    let mut w = ArchiveWriter::new(storage, WriterOptions::default()).unwrap();
    for ev in replay::load(&common::fixture()).unwrap().events {
        if let ReplayEvent::Flow(f) = ev {
            w.append(&f).unwrap();
        }
    }
    w.finish().unwrap();
    let path = dir.path().to_str().unwrap();
    tmux.start(&["tui", "--archive", path, "--verdict", "DROPPED"]);
    let s = tmux.wait_for("the archive's dropped flows", |s| {
        s.contains("archive replayed") && table_rows(s).len() == 3
    });
    assert!(s.contains("filter: --verdict DROPPED"), "{s}");
    // The filter line works on the archive too.
    tmux.keys(&["/", "C-u"]);
    tmux.type_text("--pod default/xwing");
    tmux.keys(&["Enter"]);
    tmux.wait_for("xwing's flows", |s| {
        s.contains("filter: --pod default/xwing") && table_rows(s).len() == 5
    });
    tmux.quit();
}

/// A panic in the UI restores the terminal before the message prints.
#[test]
fn tui_restores_the_terminal_on_panic() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    tmux.start_env(
        &["tui", "--server", &server.addr],
        "HUBBLE_TUI_TEST_PANIC=1 RUST_BACKTRACE=0",
    );
    let s = tmux.wait_for("hubble to exit", |s| s.contains("hubble exited with"));
    assert!(s.contains("hubble exited with 101"), "{s}");
    assert!(
        s.contains("HUBBLE_TUI_TEST_PANIC"),
        "the panic message: {s}"
    );
    assert!(
        !s.contains("hubble tui"),
        "alternate screen left on panic:\n{s}"
    );
    tmux.wait_for("raw mode off", |s| s.contains("terminal in cooked mode"));
}

/// SIGTERM ends the TUI like `q`: exit status 0, terminal restored.
#[test]
fn tui_restores_the_terminal_on_sigterm() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    tmux.start(&["tui", "--server", &server.addr]);
    tmux.wait_for("the fixture's 12 flows", |s| table_rows(s).len() == 12);
    let pid = tmux.hubble_pid();
    let pid = pid.as_str();
    let st = Command::new("kill").args(["-TERM", pid]).status().unwrap();
    assert!(st.success());
    let s = tmux.wait_for("hubble to exit", |s| s.contains("hubble exited with"));
    assert!(s.contains("hubble exited with 0"), "{s}");
    assert!(
        !s.contains("hubble tui"),
        "alternate screen left on SIGTERM:\n{s}"
    );
    tmux.wait_for("raw mode off", |s| s.contains("terminal in cooked mode"));
}

/// A terminal that goes away (the tmux server killed: the pty hangs up,
/// and only the pane's shell gets SIGHUP) ends the TUI instead of leaving
/// it spinning on end-of-file.
#[test]
fn tui_exits_when_its_terminal_goes_away() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    tmux.start(&["tui", "--server", &server.addr]);
    tmux.wait_for("the fixture's 12 flows", |s| table_rows(s).len() == 12);
    let pid = tmux.hubble_pid();
    // Killed by this guard if it outlives the test.
    struct Reap(String);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0]).status();
        }
    }
    let _reap = Reap(pid.clone());
    tmux.tmux(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let gone = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    };
    while !gone(&pid) {
        assert!(
            Instant::now() < deadline,
            "hubble tui (pid {pid}) still running 20 s after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The service map for real: `m` shows the fixture's eight edges by
/// workload, Enter on the first (xwing → deathstar) goes back to the flow
/// table filtered to it: the two dropped requests.
#[test]
fn tui_map_view_filters_the_table_to_an_edge() {
    let Some(tmux) = Tmux::new() else { return };
    let server = common::start();
    tmux.start(&["tui", "--server", &server.addr]);
    tmux.wait_for("the fixture's 12 flows", |s| table_rows(s).len() == 12);
    tmux.keys(&["m"]);
    let s = tmux.wait_for("the map", |s| {
        s.contains("map by workload: 9 nodes, 8 edges")
    });
    assert!(s.contains("default/xwing      → default/deathstar"), "{s}");
    assert!(s.contains("┌ nodes "), "{s}");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the table filtered to the edge", |s| {
        s.contains("filter: --from-pod default/xwing --to-pod default/deathstar")
            && table_rows(s).len() == 2
    });
    for row in table_rows(&s) {
        assert!(
            row.contains(" DROPPED ") || row.contains(" DENIED "),
            "{row}"
        );
    }
    tmux.quit();
}
