//! The TUI's model: the [`Inbox`] the network task fills (pending flows,
//! aggregates over every flow, connection and node state) and the [`App`]
//! the UI thread owns (the bounded history, selection, follow/pause, modes).
//! Nothing here does I/O, and the clock is read only by
//! [`Inbox::now_sec`] (the tasks pass its value in), so a test builds the
//! exact state it wants, with its own seconds, and draws it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use proto::flow::Flow;
use proto::observer::{GetFlowsResponse, Node, get_flows_response::ResponseTypes};
use proto::relay::NodeState;

use super::stats::{GroupBy, Stats};
use crate::printer::{Options, Printer};

/// Where the flows come from and how that is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Dialling (attempt 1 is the first).
    Connecting {
        /// Attempts so far, this one included.
        attempt: u32,
    },
    /// The stream is open.
    Connected,
    /// The last attempt or the stream failed; the next one follows `wait`.
    Retrying {
        /// Attempts so far.
        attempt: u32,
        /// Why the last attempt or stream ended.
        error: String,
        /// The wait before the next attempt.
        wait: Duration,
    },
    /// Replaying an archive; `done` once every matching flow was read.
    Archive {
        /// Whether the replay has finished.
        done: bool,
    },
    /// The archive could not be read with this filter.
    ArchiveError(String),
}

/// What `ServerStatus` last said (the relay fills the node counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Nodes the relay is connected to.
    pub connected_nodes: Option<u32>,
    /// Nodes the relay cannot reach.
    pub unavailable_nodes: Option<u32>,
    /// Flows in the server's ring(s).
    pub num_flows: u64,
    /// The ring's capacity.
    pub max_flows: u64,
    /// The server's version string.
    pub version: String,
}

/// What the network (or archive) task hands to the UI: flows not yet taken
/// into the history (never more than the history holds: older ones could
/// not be shown anyway), aggregates over every flow, and the stream state.
/// Shared behind a mutex; the task locks once per batch, the UI once per
/// frame.
#[derive(Debug)]
pub struct Inbox {
    /// The filter generation the contents belong to; the task drops batches
    /// of an older generation.
    pub generation: u64,
    pending: VecDeque<Flow>,
    cap: usize,
    /// Flows counted but never taken into the history because more than a
    /// history's worth arrived between two frames.
    pub overrun: u64,
    /// Aggregates over every flow of this generation.
    pub stats: Stats,
    /// The connection.
    pub conn: ConnState,
    /// Node states from `NodeStatusEvent`s, by node name.
    pub nodes: BTreeMap<String, NodeState>,
    /// The message of the last node-status event that had one.
    pub node_message: String,
    /// The last `ServerStatus` answer.
    pub server: Option<ServerInfo>,
    /// Node names seen in flows (at most [`SEEN_NODES_MAX`]): the node
    /// status of a single exporter, which sends no node events.
    pub seen_nodes: BTreeSet<String>,
    /// The last `GetNodes` answer (a relay's nodes; empty from a server
    /// that does not answer it).
    pub known_nodes: Vec<Node>,
    start: Instant,
}

/// One line of the nodes panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// The node's name.
    pub name: String,
    /// Its state as the relay last said (node-status events first, then
    /// `GetNodes`); `None` when only its flows name it.
    pub state: Option<NodeState>,
    /// Flows per second from it (last complete second).
    pub rate: u64,
    /// Flows received from it.
    pub flows: u64,
    /// Events it reported lost.
    pub lost: u64,
}

/// Node names remembered from flows; a cluster larger than this shows as
/// "64+ nodes".
pub const SEEN_NODES_MAX: usize = 64;

impl Inbox {
    /// An empty inbox that passes on at most `cap` flows per frame.
    pub fn new(cap: usize) -> Self {
        Inbox {
            generation: 0,
            pending: VecDeque::new(),
            cap: cap.max(1),
            overrun: 0,
            stats: Stats::default(),
            conn: ConnState::Connecting { attempt: 1 },
            nodes: BTreeMap::new(),
            node_message: String::new(),
            server: None,
            seen_nodes: BTreeSet::new(),
            known_nodes: Vec::new(),
            start: Instant::now(),
        }
    }

    /// Seconds since the inbox was made (the sparkline's clock).
    pub fn now_sec(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Takes one response received at `sec`: flows are counted and queued,
    /// lost events summed, node-status events applied.
    pub fn push(&mut self, res: GetFlowsResponse, sec: u64) {
        match res.response_types {
            Some(ResponseTypes::Flow(f)) => self.push_flow(f, sec),
            Some(ResponseTypes::LostEvents(l)) => {
                self.stats.record_lost(l.source, l.num_events_lost);
                self.stats
                    .record_node_lost(&res.node_name, l.num_events_lost);
            }
            Some(ResponseTypes::NodeStatus(n)) => {
                let state =
                    NodeState::try_from(n.state_change).unwrap_or(NodeState::UnknownNodeState);
                for name in n.node_names {
                    if state == NodeState::NodeGone {
                        self.nodes.remove(&name);
                    } else {
                        self.nodes.insert(name, state);
                    }
                }
                if !n.message.is_empty() {
                    self.node_message = n.message;
                }
            }
            None => {}
        }
    }

    /// Counts and queues one flow received at `sec`.
    pub fn push_flow(&mut self, f: Flow, sec: u64) {
        self.stats.record(&f, sec);
        if self.seen_nodes.len() < SEEN_NODES_MAX
            && !f.node_name.is_empty()
            && !self.seen_nodes.contains(&f.node_name)
        {
            self.seen_nodes.insert(f.node_name.clone());
        }
        if self.pending.len() >= self.cap {
            self.pending.pop_front();
            self.overrun += 1;
        }
        self.pending.push_back(f);
    }

    /// Starts generation `generation`: everything received so far is
    /// forgotten (the filter changed).
    pub fn reset(&mut self, generation: u64) {
        self.generation = generation;
        self.pending.clear();
        self.overrun = 0;
        self.stats = Stats::default();
    }

    /// Every node known from node-status events, `GetNodes` and flows,
    /// by name, with its state and counters.
    pub fn node_rows(&self) -> Vec<NodeRow> {
        let mut rows: BTreeMap<&str, NodeRow> = BTreeMap::new();
        let row = |name: &str| -> NodeRow {
            let c = self.stats.nodes.get(name);
            NodeRow {
                name: name.to_owned(),
                state: None,
                rate: c.map_or(0, |c| c.last_rate()),
                flows: c.map_or(0, |c| c.flows),
                lost: c.map_or(0, |c| c.lost),
            }
        };
        for name in self.seen_nodes.iter().chain(self.stats.nodes.keys()) {
            rows.insert(name, row(name));
        }
        for n in &self.known_nodes {
            let mut r = rows.remove(n.name.as_str()).unwrap_or_else(|| row(&n.name));
            r.state = NodeState::try_from(n.state).ok();
            rows.insert(&n.name, r);
        }
        for (name, state) in &self.nodes {
            let mut r = rows.remove(name.as_str()).unwrap_or_else(|| row(name));
            r.state = Some(*state);
            rows.insert(name, r);
        }
        rows.into_values().collect()
    }

    /// The flows queued since the last call.
    pub fn take(&mut self) -> VecDeque<Flow> {
        std::mem::take(&mut self.pending)
    }
}

/// One flow of the history, numbered in arrival order.
#[derive(Debug)]
pub struct Row {
    /// Arrival number (never reused, so a selection survives eviction of
    /// older rows).
    pub seq: u64,
    /// The flow.
    pub flow: Flow,
}

/// What the line at the bottom is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Showing the filter and messages.
    Normal,
    /// Editing the filter: the text and the cursor (in characters).
    Filter {
        /// The text being edited.
        text: String,
        /// The cursor position, in characters.
        cursor: usize,
    },
}

/// The map's selected edge (see [`App::map_edge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEdge {
    /// The source node's id.
    pub source: String,
    /// The target node's id.
    pub target: String,
    /// The filter flags selecting its flows, unquoted
    /// (`--from-pod default/xwing --to-pod default/deathstar`).
    pub filter: Vec<String>,
}

/// Settings of one TUI run.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// What the title shows as the source (server address or archive path).
    pub source: String,
    /// Flows kept in the history (`--history`).
    pub history: usize,
    /// The filter flags the run started with, as typed.
    pub filter: String,
}

/// The UI's state.
pub struct App {
    /// The run's settings.
    pub cfg: AppConfig,
    /// Flows kept, oldest first, at most `cfg.history`.
    pub history: VecDeque<Row>,
    next_seq: u64,
    /// The selected row's `seq` when not following.
    pub selected: Option<u64>,
    /// The first row shown when not following.
    pub top: Option<u64>,
    /// Whether the view follows the newest flow.
    pub follow: bool,
    /// Whether new flows are kept out of the history.
    pub paused: bool,
    /// Flows not kept while paused.
    pub paused_skipped: u64,
    /// Whether the detail pane is open.
    pub detail: bool,
    /// Lines the detail pane is scrolled by.
    pub detail_scroll: u16,
    /// Whether the help overlay is shown.
    pub help: bool,
    /// The top-N grouping.
    pub group: GroupBy,
    /// Whether the nodes panel is open (`n`).
    pub nodes_panel: bool,
    /// Whether the side panel is hidden (`s`), giving the flow table the
    /// whole width.
    pub side_hidden: bool,
    /// Whether the aggregated view replaces the flow table (`a`).
    pub aggregated: bool,
    /// Whether the service map replaces the flow table (`m`).
    pub map: bool,
    /// The map's selected edge, as an index in the edges shown (clamped
    /// when drawn).
    pub map_selected: usize,
    /// The map's first edge row on screen.
    pub map_top: usize,
    /// The node the map is focused on (`f`/`t`): only its edges are shown.
    pub map_focus: Option<String>,
    /// The selected edge as last drawn, for the keys: its source and
    /// target node ids and the filter words selecting its flows.
    pub map_edge: Option<MapEdge>,
    /// The node names `N` cycles through (refreshed from the inbox each
    /// frame).
    pub node_names: Vec<String>,
    /// The bottom line's mode.
    pub mode: Mode,
    /// The filter in force, as typed.
    pub filter: String,
    /// The last filter line that did not parse (`/` edits it again).
    pub rejected: Option<String>,
    /// A message for the bottom line, and whether it is an error.
    pub message: Option<(String, bool)>,
    /// Set when the user asked to quit.
    pub quit: bool,
    /// The filter generation shown.
    pub generation: u64,
    /// Rows of the flow table at the last draw (page size).
    pub page: usize,
    pub(crate) printer: Printer<io::Sink, io::Sink>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("cfg", &self.cfg)
            .field("history", &self.history.len())
            .field("selected", &self.selected)
            .field("follow", &self.follow)
            .field("paused", &self.paused)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl App {
    /// A fresh UI state: following, no flows.
    pub fn new(cfg: AppConfig) -> Self {
        let filter = cfg.filter.clone();
        App {
            cfg,
            history: VecDeque::new(),
            next_seq: 0,
            selected: None,
            top: None,
            follow: true,
            paused: false,
            paused_skipped: 0,
            detail: false,
            detail_scroll: 0,
            help: false,
            group: GroupBy::Pod,
            nodes_panel: false,
            side_hidden: false,
            aggregated: false,
            map: false,
            map_selected: 0,
            map_top: 0,
            map_focus: None,
            map_edge: None,
            node_names: Vec::new(),
            mode: Mode::Normal,
            filter,
            rejected: None,
            message: None,
            quit: false,
            generation: 0,
            page: 20,
            printer: Printer::new(Options::default(), io::sink(), io::sink()),
        }
    }

    /// Takes the inbox's pending flows into the history (unless paused),
    /// evicting the oldest beyond `--history`.
    pub fn absorb(&mut self, inbox: &mut Inbox) {
        let names = inbox.node_rows();
        if names.len() != self.node_names.len()
            || names
                .iter()
                .zip(&self.node_names)
                .any(|(r, n)| r.name != *n)
        {
            self.node_names = names.into_iter().map(|r| r.name).collect();
        }
        if inbox.generation != self.generation {
            return;
        }
        let flows = inbox.take();
        if self.paused {
            self.paused_skipped += flows.len() as u64;
            return;
        }
        for flow in flows {
            self.history.push_back(Row {
                seq: self.next_seq,
                flow,
            });
            self.next_seq += 1;
        }
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
    }

    /// Forgets every flow (a new filter or `c`).
    pub fn clear(&mut self) {
        self.history.clear();
        self.selected = None;
        self.top = None;
        self.follow = true;
        self.paused_skipped = 0;
        self.detail_scroll = 0;
    }

    /// The index in the history of the selected row (the newest when
    /// following; the oldest kept when the selected one was evicted).
    pub fn selected_index(&self) -> Option<usize> {
        if self.history.is_empty() {
            return None;
        }
        let last = self.history.len() - 1;
        match (self.follow, self.selected) {
            (false, Some(seq)) => Some(self.index_of(seq).min(last)),
            _ => Some(last),
        }
    }

    /// The index of the row numbered `seq`, or of the oldest row if it is
    /// gone, or of the newest if `seq` is newer than every row.
    fn index_of(&self, seq: u64) -> usize {
        let first = self.history.front().map_or(0, |r| r.seq);
        usize::try_from(seq.saturating_sub(first)).unwrap_or(usize::MAX)
    }

    /// The selected flow.
    pub fn selected_flow(&self) -> Option<&Row> {
        self.selected_index().and_then(|i| self.history.get(i))
    }

    /// Moves the selection by `delta` rows (negative is older) and stops
    /// following; moving past the newest row follows again.
    pub fn move_selection(&mut self, delta: i64) {
        let Some(cur) = self.selected_index() else {
            return;
        };
        let last = self.history.len() - 1;
        let to = (cur as i64 + delta).clamp(0, last as i64) as usize;
        if delta > 0 && to == last && cur == last {
            self.follow = true;
            self.selected = None;
            return;
        }
        self.follow = false;
        self.selected = Some(self.history[to].seq);
        self.detail_scroll = 0;
    }

    /// Selects the oldest row kept.
    pub fn select_oldest(&mut self) {
        if let Some(r) = self.history.front() {
            self.follow = false;
            self.selected = Some(r.seq);
            self.detail_scroll = 0;
        }
    }

    /// Follows the newest flow (and resumes if paused).
    pub fn follow_newest(&mut self) {
        self.follow = true;
        self.selected = None;
        self.top = None;
        self.detail_scroll = 0;
    }

    /// The rows of the window of `height` rows that shows the selection,
    /// and the selection's index in it. Remembers the window's first row so
    /// the view does not jump while scrolling.
    pub fn window(&mut self, height: usize) -> (usize, usize, Option<usize>) {
        self.page = height.max(1);
        let n = self.history.len();
        let Some(sel) = self.selected_index() else {
            return (0, 0, None);
        };
        if height == 0 {
            return (0, 0, None);
        }
        if self.follow {
            let start = n.saturating_sub(height);
            self.top = None;
            return (start, n, Some(sel - start));
        }
        let mut start = self.top.map_or(sel, |t| self.index_of(t).min(n - 1));
        if sel < start {
            start = sel;
        } else if sel >= start + height {
            start = sel + 1 - height;
        }
        // Fill the window when there are enough rows after `start`.
        if start + height > n {
            start = n.saturating_sub(height);
        }
        self.top = Some(self.history[start].seq);
        (start, (start + height).min(n), Some(sel - start))
    }
}

#[cfg(test)]
mod tests {
    use proto::flow::{Endpoint, LostEvent, Verdict};
    use proto::relay::NodeStatusEvent;

    use super::*;

    fn flow(pod: &str, verdict: Verdict, node: &str) -> Flow {
        Flow {
            verdict: verdict as i32,
            node_name: node.into(),
            source: Some(Endpoint {
                namespace: "default".into(),
                pod_name: pod.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn app(history: usize) -> App {
        App::new(AppConfig {
            source: "test".into(),
            history,
            filter: String::new(),
        })
    }

    fn pods(app: &App) -> Vec<String> {
        app.history
            .iter()
            .map(|r| r.flow.source.as_ref().unwrap().pod_name.clone())
            .collect()
    }

    #[test]
    fn history_keeps_the_newest_flows() {
        let mut inbox = Inbox::new(100);
        let mut app = app(3);
        for i in 0..5 {
            inbox.push_flow(flow(&format!("p{i}"), Verdict::Forwarded, "n"), 0);
        }
        app.absorb(&mut inbox);
        assert_eq!(pods(&app), ["p2", "p3", "p4"]);
        // Numbers are never reused: the evicted rows had 0 and 1.
        let seqs: Vec<u64> = app.history.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        inbox.push_flow(flow("p5", Verdict::Forwarded, "n"), 1);
        app.absorb(&mut inbox);
        assert_eq!(pods(&app), ["p3", "p4", "p5"]);
        assert_eq!(app.history.back().unwrap().seq, 5);
        // Counters count every flow, the evicted ones too.
        assert_eq!(inbox.stats.flows, 6);
    }

    #[test]
    fn inbox_passes_on_at_most_a_history_per_frame() {
        let mut inbox = Inbox::new(2);
        for i in 0..5 {
            inbox.push_flow(flow(&format!("p{i}"), Verdict::Forwarded, "n"), 0);
        }
        assert_eq!(inbox.overrun, 3);
        assert_eq!(inbox.stats.flows, 5);
        let taken: Vec<String> = inbox
            .take()
            .into_iter()
            .map(|f| f.source.unwrap().pod_name)
            .collect();
        assert_eq!(taken, ["p3", "p4"]);
        assert!(inbox.take().is_empty());
        // A zero cap still passes one flow on.
        let mut inbox = Inbox::new(0);
        inbox.push_flow(flow("a", Verdict::Forwarded, "n"), 0);
        inbox.push_flow(flow("b", Verdict::Forwarded, "n"), 0);
        assert_eq!(inbox.take().len(), 1);
    }

    #[test]
    fn paused_and_stale_generations_keep_the_history_still() {
        let mut inbox = Inbox::new(10);
        let mut app = app(10);
        app.paused = true;
        inbox.push_flow(flow("a", Verdict::Forwarded, "n"), 0);
        inbox.push_flow(flow("b", Verdict::Forwarded, "n"), 0);
        app.absorb(&mut inbox);
        assert!(app.history.is_empty());
        assert_eq!(app.paused_skipped, 2);
        assert_eq!(inbox.stats.flows, 2, "counters keep counting");
        app.paused = false;
        // The inbox is at a newer generation than the app: nothing taken.
        inbox.reset(1);
        inbox.push_flow(flow("c", Verdict::Forwarded, "n"), 0);
        app.absorb(&mut inbox);
        assert!(app.history.is_empty());
        app.generation = 1;
        app.absorb(&mut inbox);
        assert_eq!(pods(&app), ["c"]);
    }

    #[test]
    fn counters_and_top_n_cover_every_flow_until_reset() {
        let mut inbox = Inbox::new(1);
        inbox.push_flow(flow("xwing", Verdict::Dropped, "n1"), 0);
        inbox.push_flow(flow("xwing", Verdict::Forwarded, "n1"), 0);
        inbox.push_flow(flow("xwing", Verdict::Dropped, "n2"), 1);
        inbox.push_flow(flow("tiefighter", Verdict::Forwarded, "n2"), 1);
        assert_eq!(inbox.stats.flows, 4);
        assert_eq!(
            inbox.stats.verdict_counts(),
            vec![("FORWARDED".into(), 2), ("DROPPED".into(), 2)]
        );
        assert_eq!(
            inbox.stats.top_talkers(GroupBy::Pod, 5),
            vec![
                ("default/xwing".into(), 3),
                ("default/tiefighter".into(), 1)
            ]
        );
        assert_eq!(
            inbox.stats.top_drops(GroupBy::Pod, 5),
            vec![("default/xwing".into(), 2)]
        );
        assert_eq!(
            inbox.stats.top_talkers(GroupBy::Pod, 1),
            vec![("default/xwing".into(), 3)]
        );
        assert_eq!(inbox.seen_nodes.iter().collect::<Vec<_>>(), ["n1", "n2"]);
        inbox.reset(1);
        assert_eq!(inbox.generation, 1);
        assert_eq!(inbox.stats.flows, 0);
        assert!(inbox.stats.top_talkers(GroupBy::Pod, 5).is_empty());
        assert_eq!(inbox.overrun, 0);
        assert!(inbox.take().is_empty());
    }

    #[test]
    fn seen_nodes_are_bounded() {
        let mut inbox = Inbox::new(1);
        for i in 0..SEEN_NODES_MAX + 10 {
            inbox.push_flow(flow("p", Verdict::Forwarded, &format!("node-{i}")), 0);
        }
        inbox.push_flow(flow("p", Verdict::Forwarded, ""), 0);
        assert_eq!(inbox.seen_nodes.len(), SEEN_NODES_MAX);
    }

    #[test]
    fn lost_events_and_node_status_are_applied() {
        let mut inbox = Inbox::new(10);
        inbox.push(
            GetFlowsResponse {
                response_types: Some(ResponseTypes::LostEvents(LostEvent {
                    num_events_lost: 7,
                    ..Default::default()
                })),
                ..Default::default()
            },
            0,
        );
        assert_eq!(inbox.stats.lost, 7);
        let status = |state: NodeState, names: &[&str], message: &str| GetFlowsResponse {
            response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
                state_change: state as i32,
                node_names: names.iter().map(|n| (*n).to_owned()).collect(),
                message: message.into(),
            })),
            ..Default::default()
        };
        inbox.push(status(NodeState::NodeConnected, &["a", "b"], ""), 0);
        inbox.push(status(NodeState::NodeUnavailable, &["b"], "b is down"), 0);
        assert_eq!(inbox.nodes.get("a"), Some(&NodeState::NodeConnected));
        assert_eq!(inbox.nodes.get("b"), Some(&NodeState::NodeUnavailable));
        assert_eq!(inbox.node_message, "b is down");
        inbox.push(status(NodeState::NodeGone, &["b"], ""), 0);
        assert!(!inbox.nodes.contains_key("b"));
        assert_eq!(
            inbox.node_message, "b is down",
            "an empty message keeps the last"
        );
        assert!(inbox.take().is_empty(), "no flows queued");
    }

    #[test]
    fn selection_survives_eviction_and_clear_follows_again() {
        let mut inbox = Inbox::new(100);
        let mut app = app(3);
        for i in 0..3 {
            inbox.push_flow(flow(&format!("p{i}"), Verdict::Forwarded, "n"), 0);
        }
        app.absorb(&mut inbox);
        app.move_selection(-1);
        assert!(!app.follow);
        assert_eq!(app.selected_index(), Some(1));
        for i in 3..5 {
            inbox.push_flow(flow(&format!("p{i}"), Verdict::Forwarded, "n"), 0);
        }
        app.absorb(&mut inbox);
        // The selected row (p1) was evicted: the oldest kept is selected.
        assert_eq!(app.selected_index(), Some(0));
        assert_eq!(pods(&app), ["p2", "p3", "p4"]);
        app.clear();
        assert!(app.history.is_empty());
        assert!(app.follow);
        assert_eq!(app.selected, None);
    }
}
