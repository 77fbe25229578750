//! The UI's handle on the network task: a filter line typed after `/`
//! becomes a new generation of the stream, `c` clears, `r` reconnects.

use std::sync::Mutex;

use proto::observer::GetFlowsRequest;
use tokio::sync::watch;

use super::app::{App, Inbox};
use super::flags::parse_filter_line;
use super::net::{Control, lock};

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
