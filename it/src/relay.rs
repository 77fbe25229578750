//! A real `relay` process for the multi-node tests: it discovers the nodes
//! through one exporter's `Peer.Notify` (as `relay --peer-service` against
//! any node does in a cluster) and serves the merged Observer API on a
//! loopback port.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use proto::observer::GetNodesRequest;
use proto::observer::observer_client::ObserverClient;
use serde_json::Value;

use crate::bins;
use crate::cluster::{Proc, WAIT, free_port};
use crate::flows;
use crate::sys::TempDir;

/// A relay process; stopped on drop.
#[derive(Debug)]
pub struct Relay {
    /// Its Observer API.
    pub addr: SocketAddr,
    proc: Option<Proc>,
    _dir: TempDir,
}

impl Relay {
    /// Starts a relay on `peer_service` and waits until it serves.
    pub fn start(peer_service: &str) -> Self {
        let dir = TempDir::new("it-relay-");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(bins::bin("relay"));
        cmd.args(["--peer-service", peer_service])
            .args(["--listen-address", &addr.to_string()])
            .args(["--metrics-address", "off"])
            .args(["--node-name", "it-relay"])
            .args(["--dial-timeout", "2s", "--retry-timeout", "1s"]);
        let mut p = Proc::spawn("relay", cmd, &dir.path.join("relay.log"));
        let deadline = Instant::now() + WAIT;
        while !flows::serving(addr) {
            assert!(p.alive(), "relay exited:\n{}", p.log_text());
            assert!(Instant::now() < deadline, "relay API not up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            addr,
            proc: Some(p),
            _dir: dir,
        }
    }

    /// `GetNodes` through the relay: `(name, state)` of every node, state
    /// as the enum's name (`NODE_CONNECTED`, ...).
    pub fn nodes(&self) -> Vec<(String, String)> {
        let addr = self.addr;
        let rt = flows::runtime();
        rt.block_on(async move {
            let mut c = ObserverClient::connect(format!("http://{addr}"))
                .await
                .expect("connect to the relay");
            let r = c
                .get_nodes(GetNodesRequest::default())
                .await
                .expect("GetNodes")
                .into_inner();
            r.nodes
                .into_iter()
                .map(|n| {
                    let state = proto::relay::NodeState::try_from(n.state)
                        .map(|s| s.as_str_name().to_string())
                        .unwrap_or_default();
                    (n.name, state)
                })
                .collect()
        })
    }

    /// The newest `n` flows through the relay, as jsonpb JSON.
    pub fn flows(&self, n: u64) -> Vec<Value> {
        flows::get_flows(self.addr, n)
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        drop(self.proc.take());
    }
}
