//! `hubble tui`: the live terminal UI (ratatui on crossterm).
//!
//! Split as tokio-console splits its console: [`net`] streams `GetFlows`
//! (or replays an archive) and reconnects; [`app`] is the model (the
//! [`app::Inbox`] the stream fills, the [`app::App`] the UI owns);
//! [`stats`] aggregates every flow; [`ui`] draws; [`input`] maps keys.
//!
//! Two threads: the network task runs on the command's tokio runtime and
//! hands batches to the inbox under a mutex; the UI loop runs on a blocking
//! thread, polls keys with a short timeout (so input is never blocked by
//! the stream), and every [`defaults::TUI_TICK`] takes what arrived into the
//! bounded history and draws, formatting only the rows on screen. The
//! terminal is restored when the loop ends, on error, and on panic.

pub mod app;
pub mod input;
pub mod net;
pub mod stats;
pub mod ui;

use std::io::{self, IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{ArgMatches, Command};
use crossterm::event::{self, Event};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use proto::flow::FlowFilter;
use proto::observer::GetFlowsRequest;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::watch;

use crate::cli::{Io, filter_args, raw_filter_args};
use crate::cmd::observe::parse_filter_flags;
use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::defaults;
use crate::filters::{FILTER_FLAGS, parse_raw_filters};
use crate::gotime::{parse_time, to_timestamp};
use app::{App, AppConfig, Inbox};
use input::{Action, quote_word, split_words};
use net::{Control, lock};

/// The parsed `hubble tui` command line.
#[derive(Debug)]
pub struct Plan {
    /// The first request (filters, first screenful, follow unless archive).
    pub request: GetFlowsRequest,
    /// `--history`.
    pub history: usize,
    /// `--archive`.
    pub archive: Option<String>,
    /// The filter flags as given, for the filter line.
    pub filter: String,
}

/// Turns the command line into the first request.
pub fn plan(m: &ArgMatches, file: &ConfigFile) -> anyhow::Result<Plan> {
    let (mut whitelist, mut blacklist) = parse_filter_flags(m)?
        .finish()
        .map_err(anyhow::Error::msg)?;
    let settings = Settings::new(m, file);
    whitelist.extend(
        parse_raw_filters(&settings.list("allowlist"))
            .map_err(|e| anyhow::anyhow!("invalid --allowlist flag: {e}"))?,
    );
    blacklist.extend(
        parse_raw_filters(&settings.list("denylist"))
            .map_err(|e| anyhow::anyhow!("invalid --denylist flag: {e}"))?,
    );
    let history = m
        .get_one::<u64>("history")
        .copied()
        .unwrap_or(defaults::TUI_HISTORY as u64);
    let history = usize::try_from(history).unwrap_or(defaults::TUI_HISTORY);
    let archive = m.get_one::<String>("archive").cloned();
    let now = chrono::Utc::now();
    let time = |name: &str| -> anyhow::Result<_> {
        match m.get_one::<String>(name).filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(to_timestamp(parse_time(s, now).map_err(|e| {
                anyhow::anyhow!("failed to parse the {name} time: {e}")
            })?))),
            None => Ok(None),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    let last = m.get_one::<u64>("last").copied();
    let cap = history as u64;
    let number = match (last, since.is_some() || until.is_some(), archive.is_some()) {
        (Some(n), _, _) => n.min(cap),
        (None, true, _) => 0,
        (None, false, true) => cap,
        (None, false, false) => defaults::TUI_BACKFILL.min(cap),
    };
    Ok(Plan {
        request: GetFlowsRequest {
            number,
            follow: archive.is_none(),
            whitelist,
            blacklist,
            since,
            until,
            ..Default::default()
        },
        history,
        archive,
        filter: filter_text(m),
    })
}

/// The filter flags of a command line, in order, as one editable line.
pub fn filter_text(m: &ArgMatches) -> String {
    let mut occ: Vec<(usize, String)> = Vec::new();
    for f in FILTER_FLAGS {
        let (Some(idx), Some(vals)) = (m.indices_of(f.name), m.get_many::<String>(f.name)) else {
            continue;
        };
        for (i, v) in idx.zip(vals) {
            let word = match f.no_opt_default {
                Some(d) if d == v => format!("--{}", f.name),
                Some(_) => format!("--{}={}", f.name, quote_word(v)),
                None => format!("--{} {}", f.name, quote_word(v)),
            };
            occ.push((i, word));
        }
    }
    for name in ["allowlist", "denylist"] {
        if m.value_source(name) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        if let (Some(idx), Some(vals)) = (m.indices_of(name), m.get_many::<String>(name)) {
            for (i, v) in idx.zip(vals) {
                occ.push((i, format!("--{name} {}", quote_word(v))));
            }
        }
    }
    occ.sort_by_key(|o| o.0);
    occ.into_iter().map(|o| o.1).collect::<Vec<_>>().join(" ")
}

/// Parses a filter line (the flags of `hubble observe`, as typed after
/// `/`) with the same command table and flag parser as the command line,
/// so its meaning is identical. The error is one line for the status bar.
pub fn parse_filter_line(line: &str) -> Result<(Vec<FlowFilter>, Vec<FlowFilter>), String> {
    let words = split_words(line)?;
    let cmd = raw_filter_args(
        filter_args(
            Command::new("filter")
                .no_binary_name(true)
                .disable_help_flag(true)
                .args_override_self(true),
        ),
        false,
    );
    let m = cmd.try_get_matches_from(words).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_owned()
    })?;
    let p = parse_filter_flags(&m).map_err(|e| e.to_string())?;
    let (mut allow, mut deny) = p.finish()?;
    let raw = |name: &str| -> Vec<String> {
        m.get_many::<String>(name)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    allow.extend(
        parse_raw_filters(&raw("allowlist"))
            .map_err(|e| format!("invalid --allowlist flag: {e}"))?,
    );
    deny.extend(
        parse_raw_filters(&raw("denylist")).map_err(|e| format!("invalid --denylist flag: {e}"))?,
    );
    Ok((allow, deny))
}

/// The UI's handle on the network task: applies filters and asks for
/// reconnections.
#[derive(Debug)]
pub struct Controller {
    tx: watch::Sender<Control>,
    base: GetFlowsRequest,
}

impl Controller {
    /// A controller for requests like `base`, and the receiver for the task.
    pub fn new(base: GetFlowsRequest) -> (Self, watch::Receiver<Control>) {
        let (tx, rx) = watch::channel(Control {
            generation: 0,
            request: base.clone(),
            reconnect: 0,
        });
        (Controller { tx, base }, rx)
    }

    /// Applies a filter line: on success the history and counters start
    /// afresh and the stream restarts with the new filters; on error the
    /// message goes to the status line and the old filter stays.
    pub fn apply_filter(&mut self, app: &mut App, shared: &Mutex<Inbox>, line: &str) {
        match parse_filter_line(line) {
            Err(e) => {
                app.message = Some((e, true));
                app.rejected = Some(line.to_owned());
            }
            Ok((allow, deny)) => {
                let generation = app.generation + 1;
                app.generation = generation;
                app.filter = line.to_owned();
                app.message = None;
                app.paused = false;
                app.clear();
                lock(shared).reset(generation);
                let mut request = self.base.clone();
                request.whitelist = allow;
                request.blacklist = deny;
                self.tx.send_modify(|c| {
                    c.generation = generation;
                    c.request = request;
                });
            }
        }
    }

    /// Forgets the flows and counters shown; the stream goes on.
    pub fn clear(&mut self, app: &mut App, shared: &Mutex<Inbox>) {
        app.clear();
        lock(shared).reset(app.generation);
    }

    /// Drops the connection and dials again at once.
    pub fn reconnect(&mut self) {
        self.tx.send_modify(|c| c.reconnect += 1);
    }
}

/// Set by SIGTERM/SIGHUP: the UI loop ends at its next wake-up (within a
/// tick).
static QUIT: AtomicBool = AtomicBool::new(false);

/// Whether the TUI has the terminal (raw mode, alternate screen).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back: raw mode off, main screen, cursor shown. Only
/// once (the panic hook and the guard both call it, and leaving the
/// alternate screen twice would move the cursor back over the panic
/// message).
fn restore_terminal() {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = crossterm::execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = io::stdout().flush();
}

/// Raw mode and the alternate screen for as long as it lives; restores the
/// terminal when dropped, and installs a panic hook that restores it before
/// the panic message is printed.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            prev(info);
        }));
        enable_raw_mode()?;
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        let guard = TerminalGuard;
        crossterm::execute!(io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Runs `hubble tui`.
pub async fn run(m: &ArgMatches, file: &ConfigFile, _io: &mut Io) -> anyhow::Result<()> {
    let plan = plan(m, file)?;
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
    let ui = tokio::task::spawn_blocking(move || ui_loop(app, &shared, controller));
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
fn ui_loop(mut app: App, shared: &Mutex<Inbox>, mut ctl: Controller) -> anyhow::Result<()> {
    let _guard = TerminalGuard::enter()?;
    let backend = CrosstermBackend::new(io::BufWriter::with_capacity(64 * 1024, io::stdout()));
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
            if std::env::var_os("HUBBLE_TUI_TEST_PANIC").is_some() {
                panic!("HUBBLE_TUI_TEST_PANIC is set: panicking after the first frame");
            }
            next_frame = Instant::now() + defaults::TUI_TICK;
        }
        let timeout = next_frame.saturating_duration_since(Instant::now());
        if !event::poll(timeout)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) => {
                match input::on_key(&mut app, key) {
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
