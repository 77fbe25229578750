//! `hubble tui` under load: the release `flow-exporter` on its synthetic
//! source offering 10k and then 100k flows/s, the release `hubble tui`
//! following it in a 200×50 tmux pane for 10 s each. Prints the TUI's CPU
//! (utime+stime from `/proc/PID/stat`, in % of one core), its memory (peak
//! and final RSS), the flows it received and counted per second, the flows
//! the server reported lost to it, the exporter's own CPU, and how long a
//! key takes to show on screen under that load (input is never blocked).
//!
//! `cargo run --release -p hubble-tui --example tui_bench [SECONDS]`
//! (`just bench` runs it). Needs tmux. Builds the two binaries first.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the exporter when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private tmux server, killed when dropped.
struct Tmux(PathBuf);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "tui"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .output();
    }
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(14) + get(15)) / ticks
}

/// `VmHWM` and `VmRSS` in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}

/// The number after `word ` in the title line (`flows 1,234 ·`).
fn counter(screen: &str, word: &str) -> Option<u64> {
    let title = screen.lines().next()?;
    let at = title.find(&format!("{word} "))? + word.len() + 1;
    let digits: String = title[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

use test_support::{free_port, wait_for as wait_until};

fn run_one(bin: &Path, rate: u64, secs: u64, ticks: f64) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let exporter = Killed(
        Command::new(bin.join("flow-exporter"))
            .args(["--synthetic", "--rate", &rate.to_string()])
            .args(["--listen-address", &addr, "--metrics-address", "off"])
            .args(["--ring-capacity", "65535", "--node-name", "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flow-exporter"),
    );
    wait_until("the exporter", Duration::from_secs(10), || {
        TcpStream::connect(&addr).is_ok()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux(dir.path().join("tmux.sock"));
    let line = format!(
        "exec env -u HUBBLE_SERVER -u HUBBLE_CONFIG XDG_CONFIG_HOME=/nonexistent {} tui --server {addr}",
        bin.join("hubble").display()
    );
    tmux.run(&[
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
    let pid: u32 = tmux
        .run(&["display-message", "-p", "-t", "tui", "#{pane_pid}"])
        .trim()
        .parse()
        .expect("pane pid");
    wait_until("the TUI to connect", Duration::from_secs(10), || {
        tmux.screen().contains("● connected")
    });
    // Warm up: the backfill and the first seconds of the stream.
    std::thread::sleep(Duration::from_secs(2));
    let s0 = tmux.screen();
    let (flows0, lost0) = (
        counter(&s0, "flows").unwrap_or(0),
        counter(&s0, "lost").unwrap_or(0),
    );
    let (cpu0, exp_cpu0) = (cpu_seconds(pid, ticks), cpu_seconds(exporter.0.id(), ticks));
    let t0 = Instant::now();
    let mut peak_rss: f64 = 0.0;
    let mut latency = None;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        peak_rss = peak_rss.max(memory_mib(pid).1);
        // Half way: how long `?` takes to show the help under this load.
        if latency.is_none() && t0.elapsed() >= Duration::from_secs(secs / 2) {
            let k = Instant::now();
            tmux.run(&["send-keys", "-t", "tui", "?"]);
            wait_until("the help overlay", Duration::from_secs(10), || {
                tmux.screen().contains("this help (any key closes it)")
            });
            latency = Some(k.elapsed());
            tmux.run(&["send-keys", "-t", "tui", "Escape"]);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid, ticks) - cpu0) / elapsed * 100.0;
    let exp_cpu = (cpu_seconds(exporter.0.id(), ticks) - exp_cpu0) / elapsed * 100.0;
    let s1 = tmux.screen();
    let flows = counter(&s1, "flows").unwrap_or(0).saturating_sub(flows0) as f64 / elapsed;
    let lost = counter(&s1, "lost").unwrap_or(0).saturating_sub(lost0) as f64 / elapsed;
    let (hwm, rss) = memory_mib(pid);
    println!(
        "tui {}k flows/s offered: cpu {cpu:.1}% of a core, rss {rss:.0} MiB (peak {:.0} MiB), received {:.0} flows/s, lost {:.0}/s (server-reported), key-to-screen {} ms; exporter cpu {exp_cpu:.1}%",
        rate / 1000,
        hwm.max(peak_rss),
        flows,
        lost,
        latency.map_or("?".to_owned(), |d| d.as_millis().to_string()),
    );
    tmux.run(&["send-keys", "-t", "tui", "q"]);
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    if !Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("tui_bench: tmux not found (./bootstrap.sh installs it)");
        std::process::exit(1);
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-q",
            "--workspace",
            "--bin",
            "flow-exporter",
        ])
        .args(["--bin", "hubble"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the release binaries failed");
    // target/release/examples/tui_bench → target/release
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf();
    let ticks: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    println!(
        "hubble tui under load ({secs} s per rate, 200x50 tmux pane, release build, {} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for rate in [10_000, 100_000] {
        run_one(&bin, rate, secs, ticks);
    }
}
