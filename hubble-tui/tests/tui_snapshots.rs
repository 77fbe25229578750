//! `hubble tui` screens drawn on ratatui's `TestBackend` from a fixed state
//! (the exporter fixture's twelve flows, a fixed clock) and compared with
//! the text snapshots in `tests/snapshots/` (times and addresses masked, so
//! a change of fixture times or of address formatting does not churn every
//! snapshot). `UPDATE_SNAPSHOTS=1 cargo test -p hubble-tui --test
//! tui_snapshots` rewrites them; review the diff.
//!
//! Also the filter line end to end on the model: a valid line restarts the
//! stream with the same `FlowFilter`s as the command-line flags, an invalid
//! one shows the error and keeps the old filter.

mod common;

use std::sync::Mutex;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hubble_tui::tui::app::{App, AppConfig, ConnState, Inbox, ServerInfo};
use hubble_tui::tui::keys::{Action, on_key};
use hubble_tui::tui::{Controller, parse_filter_line, ui};
use proto::flow::{LostEvent, LostEventSource};
use proto::observer::{GetFlowsRequest, GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::relay::{NodeState, NodeStatusEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

fn fixture_responses() -> Vec<GetFlowsResponse> {
    std::fs::read_to_string(common::fixture())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The fixture received over four seconds (three flows a second), the
/// clock at second 5, connected, following.
fn state() -> (App, Inbox) {
    let mut inbox = Inbox::new(100);
    for (i, res) in fixture_responses().into_iter().enumerate() {
        inbox.push(res, i as u64 / 3);
    }
    inbox.stats.tick(5);
    inbox.conn = ConnState::Connected;
    let mut app = App::new(AppConfig {
        source: "localhost:4245".into(),
        history: 100,
        filter: String::new(),
    });
    app.absorb(&mut inbox);
    (app, inbox)
}

fn key(app: &mut App, code: KeyCode) -> Action {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// Draws the state on a `w`×`h` test terminal.
fn render(app: &mut App, inbox: &Inbox, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app, inbox)).unwrap();
    t
}

/// The screen's text, one line per row, trailing spaces removed.
fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let w = buf.area.width as usize;
    let mut out = String::new();
    for row in buf.content.chunks(w) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Times and addresses masked: digits of clock times, RFC 3339 stamps and
/// IPv4 addresses become `#`, IPv6 addresses `x`.
fn mask(s: &str) -> String {
    let digits = |re: &str, s: &str, with: char| -> String {
        regex::Regex::new(re)
            .unwrap()
            .replace_all(s, |c: &regex::Captures<'_>| {
                c[0].chars()
                    .map(|ch| if ch.is_ascii_hexdigit() { with } else { ch })
                    .collect::<String>()
            })
            .into_owned()
    };
    let s = digits(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z", s, '#');
    let s = digits(r"\b\d{2}:\d{2}:\d{2}\.\d{3}\b", &s, '#');
    let s = digits(r"\b\d{1,3}(\.\d{1,3}){3}\b", &s, '#');
    digits(r"\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b", &s, 'x')
}

fn check(name: &str, screen: &str) {
    let screen = mask(screen);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    if update || (!path.exists() && std::env::var_os("CI").is_none()) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &screen).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("snapshot {}: {e}", path.display()));
    assert!(
        want == screen,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it)\n--- want\n{want}\n--- got\n{screen}"
    );
}

#[test]
fn main_screen() {
    let (mut app, inbox) = state();
    let t = render(&mut app, &inbox, 160, 30);
    let screen = text(&t);
    check("main", &screen);
    // Masked in the snapshot, but present on screen.
    assert!(screen.contains("May  1 10:00:01.007"), "{screen}");
    assert!(screen.contains("flows 12 ·"), "{screen}");
}

#[test]
fn verdicts_are_coloured() {
    let (mut app, inbox) = state();
    let t = render(&mut app, &inbox, 160, 30);
    let buf = t.backend().buffer();
    let find = |word: &str| {
        let w = buf.area.width as usize;
        buf.content
            .chunks(w)
            .enumerate()
            .find_map(|(y, row)| {
                let line: String = row.iter().map(|c| c.symbol()).collect();
                // The first table row with that verdict (not the side panel).
                line.find(&format!(" {word} "))
                    .filter(|x| *x < 130)
                    .map(|x| (x + 1, y))
            })
            .unwrap()
    };
    let (x, y) = find("DROPPED");
    assert_eq!(buf[(x as u16, y as u16)].fg, Color::Red);
    let (x, y) = find("FORWARDED");
    assert_eq!(buf[(x as u16, y as u16)].fg, Color::Green);
}

#[test]
fn detail_pane() {
    let (mut app, inbox) = state();
    // Up twice from the newest: the policy-denied flow f10 is two above f12.
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    assert!(!app.follow);
    let t = render(&mut app, &inbox, 160, 48);
    let screen = text(&t);
    check("detail", &screen);
    assert!(screen.contains("flow f10"), "{screen}");
    assert!(screen.contains("\"uuid\": \"f10\""), "{screen}");
    assert!(screen.contains("l4.TCP.flags.FIN: true"), "{screen}");
}

#[test]
fn help_overlay() {
    let (mut app, inbox) = state();
    key(&mut app, KeyCode::Char('?'));
    let t = render(&mut app, &inbox, 120, 30);
    check("help", &text(&t));
    // Any key closes it.
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);
}

#[test]
fn narrow_screen_and_grouping_and_pause() {
    let (mut app, mut inbox) = state();
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char(' '));
    for res in fixture_responses().into_iter().take(4) {
        inbox.push(res, 5);
    }
    app.absorb(&mut inbox);
    assert_eq!(app.history.len(), 12, "paused: nothing new is kept");
    assert_eq!(app.paused_skipped, 4);
    let t = render(&mut app, &inbox, 160, 30);
    check("grouped_paused", &text(&t));
    let t = render(&mut app, &inbox, 90, 20);
    check("narrow", &text(&t));
}

#[test]
fn disconnected_with_nodes_and_lost_events() {
    let (mut app, mut inbox) = state();
    inbox.conn = ConnState::Retrying {
        attempt: 3,
        error: "Connection refused (os error 111)".into(),
        wait: std::time::Duration::from_secs(2),
    };
    inbox.push(
        GetFlowsResponse {
            response_types: Some(ResponseTypes::LostEvents(LostEvent {
                source: LostEventSource::HubbleRingBuffer as i32,
                num_events_lost: 1234,
                ..Default::default()
            })),
            ..Default::default()
        },
        5,
    );
    inbox.push(
        GetFlowsResponse {
            response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                state_change: NodeState::NodeConnected as i32,
                node_names: vec!["kind-worker".into(), "kind-control-plane".into()],
                message: String::new(),
            })),
            ..Default::default()
        },
        5,
    );
    inbox.push(
        GetFlowsResponse {
            response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                state_change: NodeState::NodeUnavailable as i32,
                node_names: vec!["kind-worker2".into()],
                message: "dial timeout".into(),
            })),
            ..Default::default()
        },
        5,
    );
    let t = render(&mut app, &inbox, 160, 30);
    let screen = text(&t);
    check("disconnected", &screen);
    assert!(
        screen.contains("nodes 2 connected, 1 unavailable"),
        "{screen}"
    );
    assert!(screen.contains("lost 1,234"), "{screen}");
    assert!(
        screen.contains("disconnected (retry 4 in 2.0s)"),
        "{screen}"
    );
    // A relay's ServerStatus takes precedence over the events.
    inbox.server = Some(ServerInfo {
        connected_nodes: Some(3),
        unavailable_nodes: Some(0),
        ..Default::default()
    });
    let screen = text(&render(&mut app, &inbox, 160, 30));
    assert!(
        screen.contains("nodes 3 connected, 0 unavailable"),
        "{screen}"
    );
}

#[test]
fn filter_line_edits_and_applies() {
    let (mut app, inbox) = state();
    let shared = Mutex::new(inbox);
    let (mut ctl, mut rx) = Controller::new(GetFlowsRequest {
        number: 100,
        follow: true,
        ..Default::default()
    });
    // An invalid line: the error shows, the old filter stays.
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "--verdict DROPPED --bogus");
    let t = render(&mut app, &shared.lock().unwrap(), 160, 30);
    check("filter_editing", &text(&t));
    let Action::ApplyFilter(line) = key(&mut app, KeyCode::Enter) else {
        panic!("Enter applies");
    };
    ctl.apply_filter(&mut app, &shared, &line);
    assert_eq!(app.filter, "");
    assert_eq!(app.history.len(), 12);
    assert!(!rx.has_changed().unwrap());
    let t = render(&mut app, &shared.lock().unwrap(), 160, 30);
    let screen = text(&t);
    check("filter_error", &screen);
    assert!(
        screen.contains("error: unexpected argument '--bogus' found"),
        "{screen}"
    );

    // A valid line: same filters as the command-line flags, a new
    // generation, history and counters forgotten.
    // `/` again edits the rejected line.
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..8 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, " --pod default/xwing");
    let Action::ApplyFilter(line) = key(&mut app, KeyCode::Enter) else {
        panic!("Enter applies");
    };
    assert_eq!(line, "--verdict DROPPED --pod default/xwing");
    ctl.apply_filter(&mut app, &shared, &line);
    assert!(rx.has_changed().unwrap());
    let c = rx.borrow_and_update().clone();
    assert_eq!(c.generation, 1);
    assert_eq!(c.request.number, 100);
    assert!(c.request.follow);
    let (allow, deny) = parse_filter_line("--verdict DROPPED --pod default/xwing").unwrap();
    assert_eq!(c.request.whitelist, allow);
    assert_eq!(c.request.blacklist, deny);
    assert_eq!(app.filter, line);
    assert!(app.history.is_empty());
    assert_eq!(shared.lock().unwrap().stats.flows, 0);
    assert_eq!(shared.lock().unwrap().generation, 1);
}

/// The filter line means what the same flags mean on the command line.
#[test]
fn filter_line_matches_command_line_flags() {
    let cases: &[&[&str]] = &[
        &["--verdict", "DROPPED"],
        &[
            "--pod",
            "default/xwing",
            "--protocol",
            "tcp",
            "--port",
            "80",
        ],
        &["--not", "--namespace", "kube-system", "-t", "drop"],
        &["--from-label", "k8s:app=a b", "--to-ip", "10.0.0.0/8"],
        &["-4", "--from-all-namespaces"],
        &["--allowlist", r#"{"source_pod":["default/"]}"#],
    ];
    for args in cases {
        let line = args
            .iter()
            .map(|a| hubble_tui::tui::keys::quote_word(a))
            .collect::<Vec<_>>()
            .join(" ");
        let from_line = parse_filter_line(&line).unwrap();
        let mut argv = vec!["hubble", "observe"];
        argv.extend_from_slice(args);
        let m = hubble_tui::cli::command()
            .try_get_matches_from(argv)
            .unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let p = hubble_tui::cmd::observe::plan(sub, &Default::default(), false, false).unwrap();
        assert_eq!(from_line.0, p.request.whitelist, "{line}");
        assert_eq!(from_line.1, p.request.blacklist, "{line}");
        // And `hubble tui` with the same flags shows the same line.
        let mut argv = vec!["hubble", "tui"];
        argv.extend_from_slice(args);
        let m = hubble_tui::cli::command()
            .try_get_matches_from(argv)
            .unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let plan = hubble_tui::tui::plan(sub, &Default::default()).unwrap();
        assert_eq!(plan.request.whitelist, from_line.0, "{line}");
        assert_eq!(
            parse_filter_line(&plan.filter).unwrap(),
            from_line,
            "{}",
            plan.filter
        );
    }
    assert!(
        parse_filter_line("--not")
            .unwrap_err()
            .contains("trailing --not")
    );
    assert!(parse_filter_line("--verdict").is_err());
    assert!(parse_filter_line("'open").is_err());
}

#[test]
fn scrolling_keeps_the_selection_while_flows_arrive() {
    let (mut app, mut inbox) = state();
    key(&mut app, KeyCode::Home);
    assert_eq!(app.selected_flow().unwrap().flow.uuid, "f01");
    key(&mut app, KeyCode::Down);
    for res in fixture_responses() {
        inbox.push(res, 6);
    }
    app.absorb(&mut inbox);
    assert_eq!(app.history.len(), 24);
    assert_eq!(app.selected_flow().unwrap().flow.uuid, "f02");
    // History is bounded: 100 kept of 120, the selection clamps to the
    // oldest kept; the counters count all 120.
    for _ in 0..8 {
        for res in fixture_responses() {
            inbox.push(res, 7);
        }
    }
    app.absorb(&mut inbox);
    assert_eq!(app.history.len(), 100);
    assert_eq!(app.history.front().unwrap().seq, 20);
    assert_eq!(app.selected_flow().unwrap().seq, 20);
    assert_eq!(inbox.stats.flows, 120);
    key(&mut app, KeyCode::End);
    assert!(app.follow);
    assert_eq!(app.selected_flow().unwrap().seq, 119);
    key(&mut app, KeyCode::PageUp);
    assert!(!app.follow);
    assert_eq!(key(&mut app, KeyCode::Char('q')), Action::Quit);
}

#[test]
fn service_translations_and_services_are_shown() {
    // A connection to the deathstar service as the datapath reports it
    // (trace-sock before and after translation) and the reply from the VIP.
    let lines = [
        r#"{"flow":{"time":"2024-05-01T10:00:20Z","uuid":"s1","verdict":"TRACED","IP":{"source":"10.244.1.60","destination":"10.96.0.10","ipVersion":"IPv4"},"l4":{"TCP":{"destination_port":80}},"source":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"destination":{},"Type":"SOCK","event_type":{"type":7,"sub_type":1},"destination_service":{"name":"deathstar","namespace":"empire"},"sock_xlate_point":"SOCK_XLATE_POINT_PRE_DIRECTION_FWD","socket_cookie":"77","Summary":"TCP"}}"#,
        r#"{"flow":{"time":"2024-05-01T10:00:20Z","uuid":"s2","verdict":"TRANSLATED","IP":{"source":"10.244.1.60","destination":"10.244.1.5","ipVersion":"IPv4"},"l4":{"TCP":{"destination_port":8080}},"source":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"destination":{"ID":12,"identity":1002,"namespace":"empire","pod_name":"deathstar-1"},"Type":"SOCK","event_type":{"type":7,"sub_type":2},"sock_xlate_point":"SOCK_XLATE_POINT_POST_DIRECTION_FWD","socket_cookie":"77","Summary":"TCP"}}"#,
        r#"{"flow":{"time":"2024-05-01T10:00:20.1Z","uuid":"s3","verdict":"FORWARDED","IP":{"source":"10.96.0.10","destination":"10.244.1.60","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":80,"destination_port":40000,"flags":{"SYN":true,"ACK":true}}},"source":{"ID":12,"identity":1002,"namespace":"empire","pod_name":"deathstar-1"},"destination":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"Type":"L3_L4","event_type":{"type":4},"trace_observation_point":"TO_ENDPOINT","is_reply":true,"source_service":{"name":"deathstar","namespace":"empire"},"Summary":"TCP Flags: SYN, ACK"}}"#,
    ];
    let mut inbox = Inbox::new(100);
    for l in lines {
        inbox.push(serde_json::from_str(l).unwrap(), 0);
    }
    inbox.conn = ConnState::Connected;
    let mut app = App::new(AppConfig {
        source: "localhost:4245".into(),
        history: 100,
        filter: String::new(),
    });
    app.absorb(&mut inbox);
    let screen = text(&render(&mut app, &inbox, 200, 12));
    let row = |needle: &str| {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}:\n{screen}"))
            .to_owned()
    };
    let pre = row("pre-xlate-fwd");
    assert!(pre.contains("empire/deathstar:80"), "{pre}");
    assert!(pre.contains("→ empire/deathstar"), "{pre}");
    assert!(pre.contains("TRACED"), "{pre}");
    let post = row("post-xlate-fwd");
    assert!(post.contains("empire/deathstar-1:8080"), "{post}");
    assert!(post.contains("TRANSLATED"), "{post}");
    let reply = row("to-endpoint");
    assert!(reply.contains("← empire/deathstar"), "{reply}");
}

/// Following a relay with three nodes: the nodes panel (`n`) with each
/// node's state from `GetNodes` and node-status events, flows per second
/// and lost events; `N` narrows the filter to one node after another and
/// back to every node; the NODE column is shown.
#[test]
fn cluster_nodes_panel_and_node_filter() {
    let (mut app, mut inbox) = state();
    let node = |name: &str, state: NodeState| proto::observer::Node {
        name: name.into(),
        state: state as i32,
        ..Default::default()
    };
    inbox.known_nodes = vec![
        node("kind-kind/kind-control-plane", NodeState::NodeConnected),
        node("kind-kind/kind-worker", NodeState::NodeConnected),
        node("kind-kind/kind-worker2", NodeState::NodeConnected),
    ];
    // An event is newer than the last GetNodes: kind-worker2 went away.
    inbox.push(
        GetFlowsResponse {
            response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                state_change: NodeState::NodeUnavailable as i32,
                node_names: vec!["kind-kind/kind-worker2".into()],
                message: "dial timeout".into(),
            })),
            ..Default::default()
        },
        5,
    );
    inbox.push(
        GetFlowsResponse {
            node_name: "kind-kind/kind-worker".into(),
            response_types: Some(ResponseTypes::LostEvents(LostEvent {
                source: LostEventSource::PerfEventRingBuffer as i32,
                num_events_lost: 42,
                ..Default::default()
            })),
            ..Default::default()
        },
        5,
    );
    app.absorb(&mut inbox);
    let rows = inbox.node_rows();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kind-kind/kind-control-plane",
            "kind-kind/kind-worker",
            "kind-kind/kind-worker2",
            "prod-east/node-1"
        ]
    );
    let worker = &rows[1];
    assert_eq!((worker.flows, worker.lost), (8, 42));
    assert_eq!(rows[2].state, Some(NodeState::NodeUnavailable));
    assert_eq!(rows[3].state, None, "known only from its flows");

    assert_eq!(key(&mut app, KeyCode::Char('n')), Action::None);
    let screen = text(&render(&mut app, &inbox, 160, 30));
    check("nodes_panel", &screen);
    assert!(screen.contains("NODE"), "{screen}");
    assert!(screen.contains("unavailable"), "{screen}");
    assert!(screen.contains("kind-kind/kind-worker2"), "{screen}");

    // `s`: the side panel makes way, the pod names are no longer cut (the
    // nodes panel stays open).
    key(&mut app, KeyCode::Char('s'));
    let screen = text(&render(&mut app, &inbox, 160, 30));
    check("cluster_wide_table", &screen);
    assert!(!screen.contains("verdicts"), "{screen}");
    assert!(
        screen.contains("default/deathstar-6fb5694d48-5hmds"),
        "{screen}"
    );
    let screen = text(&render(&mut app, &inbox, 200, 50));
    check("cluster_200x50", &screen);
    assert!(
        screen.contains("default/deathstar-6fb5694d48-5hmds:80"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('s'));

    // `N`: one node after another, then every node again.
    let shared = Mutex::new(inbox);
    let (mut ctl, mut rx) = Controller::new(GetFlowsRequest::default());
    let mut seen = Vec::new();
    for _ in 0..5 {
        let Action::ApplyFilter(line) = key(&mut app, KeyCode::Char('N')) else {
            panic!("N applies a filter");
        };
        ctl.apply_filter(&mut app, &shared, &line);
        assert!(rx.has_changed().unwrap());
        let req = rx.borrow_and_update().request.clone();
        seen.push(app.filter.clone());
        if line.is_empty() {
            assert!(req.whitelist.is_empty());
        } else {
            let (allow, _) = parse_filter_line(&line).unwrap();
            assert_eq!(req.whitelist, allow);
            assert_eq!(
                allow[0].node_name,
                [hubble_tui::tui::keys::node_filter(&line).unwrap()]
            );
        }
    }
    assert_eq!(
        seen,
        [
            "--node-name kind-kind/kind-control-plane",
            "--node-name kind-kind/kind-worker",
            "--node-name kind-kind/kind-worker2",
            "--node-name prod-east/node-1",
            "",
        ]
    );
    // Another filter is kept while the node changes.
    ctl.apply_filter(
        &mut app,
        &shared,
        "--verdict DROPPED --node-name=prod-east/node-1",
    );
    let Action::ApplyFilter(line) = key(&mut app, KeyCode::Char('N')) else {
        panic!("N applies a filter");
    };
    assert_eq!(line, "--verdict DROPPED", "after the last node: every node");
    // The marker shows the node filtered to.
    ctl.apply_filter(&mut app, &shared, "--node-name kind-kind/kind-worker");
    let screen = text(&render(&mut app, &shared.lock().unwrap(), 160, 30));
    assert!(screen.contains("▶ kind-kind/kind-worker "), "{screen}");
}

/// The TYPE column is as wide as its longest type on screen: a policy
/// verdict's `policy-verdict:L3-L4 INGRESS` is not cut (on a screen with
/// room for every column's minimum; below that ratatui squeezes them all).
#[test]
fn type_column_is_never_cut() {
    let (mut app, mut inbox) = state();
    let mut res = fixture_responses().remove(6);
    if let Some(ResponseTypes::Flow(f)) = res.response_types.as_mut() {
        f.policy_match_type = 2; // L3-L4
    }
    inbox.push(res, 5);
    app.absorb(&mut inbox);
    let want = hubble_tui::printer::flow_type(&app.history.back().unwrap().flow);
    assert!(want.starts_with("policy-verdict:L3-L4"), "{want}");
    for w in [160, 200] {
        let screen = text(&render(&mut app, &inbox, w, 30));
        assert!(screen.contains(&want), "{w} wide: {screen}");
    }
}

/// The aggregated view (`a`): the fixture's flows counted by source,
/// destination, port and verdict (known by hand: xwing → deathstar:80 was
/// dropped twice, flows 1 and 7; every other group once), at 80×24 and
/// 200×50, grouped by pod and then by namespace (`g`).
#[test]
fn aggregated_view() {
    let (mut app, inbox) = state();
    let top = inbox
        .stats
        .top_pairs(hubble_tui::tui::stats::GroupBy::Pod, 100);
    assert_eq!(top.len(), 11, "{top:?}");
    assert_eq!(
        top[0],
        (
            [
                "default/xwing".to_owned(),
                "default/deathstar-6fb5694d48-5hmds".to_owned(),
                "80/TCP".to_owned(),
                "DROPPED".to_owned()
            ],
            2
        )
    );
    assert!(top[1..].iter().all(|(_, n)| *n == 1));
    assert_eq!(top.iter().map(|(_, n)| n).sum::<u64>(), 12);

    assert_eq!(key(&mut app, KeyCode::Char('a')), Action::None);
    let screen = text(&render(&mut app, &inbox, 80, 24));
    check("aggregated_80x24", &screen);
    assert!(screen.contains("flows by pod"), "{screen}");
    let screen = text(&render(&mut app, &inbox, 200, 50));
    check("aggregated_200x50", &screen);
    assert!(
        screen.contains("default/deathstar-6fb5694d48-5hmds   80/TCP"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('g'));
    let screen = text(&render(&mut app, &inbox, 200, 50));
    check("aggregated_by_namespace", &screen);
    // By namespace, two groups of two: default → world on 443 (flows 4 and
    // 12) and default → default on 80, dropped (flows 1 and 7).
    let top = inbox
        .stats
        .top_pairs(hubble_tui::tui::stats::GroupBy::Namespace, 3);
    let heads: Vec<(&str, &str, &str, u64)> = top
        .iter()
        .map(|(l, n)| (l[1].as_str(), l[2].as_str(), l[3].as_str(), *n))
        .collect();
    assert_eq!(
        heads[..2],
        [
            ("(world)", "443/TCP", "FORWARDED", 2),
            ("default", "80/TCP", "DROPPED", 2)
        ]
    );
    assert_eq!(heads[2].3, 1);
    // `a` again: the flow table is back.
    key(&mut app, KeyCode::Char('a'));
    let screen = text(&render(&mut app, &inbox, 200, 50));
    assert!(screen.contains("┌ flows 12/100"), "{screen}");
}

/// The service map view (`m`) over the fixture (counts known by hand; see
/// `map::tests`): eight edges by workload, largest first, at 80×24 and
/// 200×50 (with the nodes panel); focus on a node; `g` regroups; Enter
/// filters the flow table to the selected edge.
#[test]
fn map_view() {
    let (mut app, inbox) = state();
    assert_eq!(key(&mut app, KeyCode::Char('m')), Action::None);
    assert!(app.map);
    let t = render(&mut app, &inbox, 80, 24);
    let screen = text(&t);
    check("map_80x24", &screen);
    assert!(
        screen.contains("map by workload: 9 nodes, 8 edges"),
        "{screen}"
    );
    // The mixed edge (xwing → deathstar: 1 forwarded, 2 dropped) first,
    // its arrow yellow; the world → deathstar drop third, red.
    let buf = t.backend().buffer();
    let arrow = |src: &str, dst: &str| {
        let w = buf.area.width as usize;
        buf.content
            .chunks(w)
            .enumerate()
            .find_map(|(y, cells)| {
                let line: String = cells.iter().map(|c| c.symbol()).collect();
                let hit =
                    line.starts_with(&format!("│{src} ")) && line.contains(&format!("→ {dst} "));
                hit.then(|| {
                    let x = cells.iter().position(|c| c.symbol() == "→").unwrap();
                    buf[(x as u16, y as u16)].fg
                })
            })
            .unwrap()
    };
    assert_eq!(arrow("default/xwing", "default/deathstar"), Color::Yellow);
    assert_eq!(arrow("world", "default/deathstar"), Color::Red);
    assert_eq!(
        arrow("default/tiefighter", "default/deathstar"),
        Color::Green
    );
    let screen = text(&render(&mut app, &inbox, 200, 50));
    check("map_200x50", &screen);
    assert!(screen.contains("┌ nodes "), "{screen}");

    // Down twice: world → deathstar; `f` focuses on its source, world.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let _ = render(&mut app, &inbox, 80, 24);
    assert_eq!(
        app.map_edge.as_ref().map(|e| e.source.as_str()),
        Some("reserved:world")
    );
    key(&mut app, KeyCode::Char('f'));
    let screen = text(&render(&mut app, &inbox, 80, 24));
    check("map_focused", &screen);
    assert!(
        screen.contains("map by workload: 4 nodes, 3 edges around world"),
        "{screen}"
    );
    // Drawn as boxes: world's two sources left, its target right.
    assert!(
        screen.contains("│default/xwing    │ ───1───▶ │"),
        "{screen}"
    );
    assert!(
        screen.contains("│ ───1───▶ │default/deathstar│"),
        "{screen}"
    );
    // Esc unfocuses, a second Esc would leave; `g` regroups by namespace.
    key(&mut app, KeyCode::Esc);
    assert!(app.map && app.map_focus.is_none());
    key(&mut app, KeyCode::Char('g'));
    let screen = text(&render(&mut app, &inbox, 80, 24));
    assert!(
        screen.contains("map by namespace: 6 nodes, 6 edges"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('g'));
    let _ = render(&mut app, &inbox, 80, 24);

    // Enter: the flow table, filtered to the first edge's flows.
    let action = key(&mut app, KeyCode::Enter);
    assert_eq!(
        action,
        Action::ApplyFilter("--from-pod default/xwing --to-pod default/deathstar".into())
    );
    assert!(!app.map);
    let Action::ApplyFilter(line) = action else {
        unreachable!()
    };
    let (allow, deny) = parse_filter_line(&line).unwrap();
    assert!(deny.is_empty());
    assert_eq!(allow.len(), 1);
    assert_eq!(allow[0].source_pod, ["default/xwing"]);
    assert_eq!(allow[0].destination_pod, ["default/deathstar"]);
    // `m` then `m` again: back to the flow table.
    key(&mut app, KeyCode::Char('m'));
    key(&mut app, KeyCode::Char('m'));
    let screen = text(&render(&mut app, &inbox, 200, 50));
    assert!(screen.contains("┌ flows 12/100"), "{screen}");
}
