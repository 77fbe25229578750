//! `hubble tui`'s entry point and its UI loop: the network (or archive)
//! task on the command's tokio runtime, the UI loop on a blocking thread
//! that polls keys with a short timeout (so input is never blocked by the
//! stream) and every [`defaults::TUI_TICK`] takes what arrived into the
//! bounded history and draws.

use std::io::{self, IsTerminal as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::ArgMatches;
use crossterm::event::{self, Event};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::{App, AppConfig, Inbox};
use super::controller::Controller;
use super::flags::plan;
use super::keys::{self, Action};
use super::net::{self, lock};
use super::terminal::TerminalGuard;
use super::ui;
use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::defaults;
use crate::request::Io;

/// Set by SIGTERM/SIGHUP: the UI loop ends at its next wake-up (within a
/// tick).
static QUIT: AtomicBool = AtomicBool::new(false);

/// The environment variable that makes the UI panic after its first frame,
/// for the test that the terminal is restored on panic. Read once, when
/// `hubble tui` starts ([`LoopOptions::from_env`]), never in the loop.
pub const TEST_PANIC_ENV: &str = "HUBBLE_TUI_TEST_PANIC";

/// Settings of the UI loop fixed at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopOptions {
    /// Panic right after the first frame is drawn ([`TEST_PANIC_ENV`]).
    pub panic_after_first_frame: bool,
}

impl LoopOptions {
    /// The options from the environment of the process.
    pub fn from_env() -> Self {
        LoopOptions {
            panic_after_first_frame: std::env::var_os(TEST_PANIC_ENV).is_some(),
        }
    }
}

/// Runs `hubble tui`.
pub async fn run(m: &ArgMatches, file: &ConfigFile, _io: &mut Io) -> anyhow::Result<()> {
    let plan = plan(m, file)?;
    let opts = LoopOptions::from_env();
    anyhow::ensure!(
        io::stdout().is_terminal() && io::stdin().is_terminal(),
        "hubble tui needs a terminal (use `hubble observe` in scripts)"
    );
    let shared = Arc::new(Mutex::new(Inbox::new(plan.history)));
    let (controller, rx) = Controller::new(plan.request.clone());
    let (source, task) = match &plan.archive {
        Some(dir) => (
            format!("archive {dir}"),
            tokio::spawn(net::replay_archive(dir.clone(), shared.clone(), rx)),
        ),
        None => {
            let server = ServerOptions::from_settings(&Settings::new(m, file))?;
            let source = server.target().to_owned();
            (
                source,
                tokio::spawn(net::follow(server, shared.clone(), rx)),
            )
        }
    };
    let app = App::new(AppConfig {
        source,
        history: plan.history,
        filter: plan.filter,
    });
    // SIGTERM and SIGHUP (the terminal closed) end the loop like `q`, so
    // the terminal is restored.
    let signals = tokio::spawn(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        QUIT.store(true, Ordering::SeqCst);
    });
    exit_on_hangup();
    let ui = tokio::task::spawn_blocking(move || ui_loop(app, &shared, controller, opts));
    let res = ui.await;
    task.abort();
    signals.abort();
    match res {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(e.into()),
    }
}

/// The UI loop: keys as they come, a frame every tick (and right after a
/// key), until `q`.
fn ui_loop(
    mut app: App,
    shared: &Mutex<Inbox>,
    mut ctl: Controller,
    opts: LoopOptions,
) -> anyhow::Result<()> {
    let _guard = TerminalGuard::enter()?;
    let backend = CrosstermBackend::new(io::BufWriter::with_capacity(
        defaults::TUI_FRAME_BUFFER,
        io::stdout(),
    ));
    let mut terminal = Terminal::new(backend)?;
    terminal.clear()?;
    let mut next_frame = Instant::now();
    loop {
        if QUIT.load(Ordering::SeqCst) {
            return Ok(());
        }
        if Instant::now() >= next_frame {
            let mut inbox = lock(shared);
            let sec = inbox.now_sec();
            inbox.stats.tick(sec);
            app.absorb(&mut inbox);
            terminal.draw(|f| ui::draw(f, &mut app, &inbox))?;
            drop(inbox);
            // For the test that the terminal is restored on panic.
            if opts.panic_after_first_frame {
                panic!("{TEST_PANIC_ENV} is set: panicking after the first frame");
            }
            next_frame = Instant::now() + defaults::TUI_TICK;
        }
        let timeout = next_frame.saturating_duration_since(Instant::now());
        if !event::poll(timeout)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) => {
                match keys::on_key(&mut app, key) {
                    Action::Quit => return Ok(()),
                    Action::ApplyFilter(line) => ctl.apply_filter(&mut app, shared, &line),
                    Action::Clear => ctl.clear(&mut app, shared),
                    Action::Reconnect => ctl.reconnect(),
                    Action::None => {}
                }
                next_frame = Instant::now();
            }
            Event::Resize(..) => next_frame = Instant::now(),
            _ => {}
        }
    }
}

/// Ends the process when the terminal on standard input hangs up (its
/// window closed, tmux killed). Only the session leader gets SIGHUP then,
/// not necessarily us, and a reader of a hung-up tty sees end-of-file
/// forever: crossterm's event reader would spin on it inside `poll`, where
/// the UI loop cannot look at [`QUIT`]. There is no terminal left to
/// restore, so the watchdog exits at once, with the status of a process
/// killed by SIGHUP (129).
fn exit_on_hangup() {
    let spawned = std::thread::Builder::new()
        .name("tui-hangup".into())
        .spawn(|| {
            loop {
                // `events: 0`: poll reports only POLLHUP/POLLERR/POLLNVAL,
                // which a live terminal never does.
                let mut fds = libc::pollfd {
                    fd: libc::STDIN_FILENO,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut fds, 1, 1000) };
                if n > 0 {
                    std::process::exit(129);
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: no terminal hang-up watchdog: {e}");
    }
}
