//! Reading a node exporter's flows over gRPC (the `proto` crate's Observer
//! client), as Hubble's jsonpb JSON for easy assertions.

use std::net::SocketAddr;
use std::time::Duration;

use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest, get_flows_response::ResponseTypes};
use serde_json::Value;

/// A current-thread runtime for one blocking call of a test or bench.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Whether an Observer API answers `ServerStatus` at `addr`.
pub fn serving(addr: SocketAddr) -> bool {
    runtime().block_on(async {
        let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_secs(2),
            ObserverClient::connect(format!("http://{addr}")),
        )
        .await
        else {
            return false;
        };
        c.server_status(ServerStatusRequest::default())
            .await
            .is_ok()
    })
}

/// Everything `GetFlows` (non-follow, the newest `n`) returns: flows and
/// lost events, in order, as jsonpb JSON of the response's oneof
/// (`{"flow": …}` or `{"lost_events": …}`).
pub fn get_flows_responses(addr: SocketAddr, n: u64) -> Vec<Value> {
    runtime().block_on(async {
        let mut c = ObserverClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the exporter");
        let mut s = c
            .get_flows(GetFlowsRequest {
                number: n,
                ..Default::default()
            })
            .await
            .expect("GetFlows")
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = s.message().await.expect("GetFlows stream") {
            match r.response_types {
                Some(ResponseTypes::Flow(f)) => {
                    out.push(serde_json::json!({ "flow": serde_json::to_value(f).expect("json") }))
                }
                Some(ResponseTypes::LostEvents(l)) => out.push(
                    serde_json::json!({ "lost_events": serde_json::to_value(l).expect("json") }),
                ),
                _ => {}
            }
        }
        out
    })
}

/// The newest `n` flows at `addr`, as jsonpb JSON.
pub fn get_flows(addr: SocketAddr, n: u64) -> Vec<Value> {
    get_flows_responses(addr, n)
        .into_iter()
        .filter_map(|mut v| v.get_mut("flow").map(Value::take))
        .collect()
}

/// `namespace/pod` of a flow's `source` or `destination`.
pub fn pod(f: &Value, side: &str) -> String {
    format!(
        "{}/{}",
        f[side]["namespace"].as_str().unwrap_or(""),
        f[side]["pod_name"].as_str().unwrap_or("")
    )
}

/// A flow's source pod name (empty when not a pod).
pub fn src(f: &Value) -> &str {
    f["source"]["pod_name"].as_str().unwrap_or("")
}

/// A flow's destination pod name (empty when not a pod).
pub fn dst(f: &Value) -> &str {
    f["destination"]["pod_name"].as_str().unwrap_or("")
}

/// `FORWARDED`, `DROPPED`, ….
pub fn verdict(f: &Value) -> &str {
    f["verdict"].as_str().unwrap_or("")
}

/// The flow's destination port (TCP or UDP), 0 otherwise.
pub fn dport(f: &Value) -> u64 {
    ["TCP", "UDP"]
        .iter()
        .find_map(|p| f["l4"][p]["destination_port"].as_u64())
        .unwrap_or(0)
}

/// One line describing a flow (for failure messages).
pub fn line(f: &Value) -> String {
    format!(
        "{} {} -> {} {} {} {} type={} reply={}",
        f["IP"]["source"].as_str().unwrap_or("?"),
        pod(f, "source"),
        f["IP"]["destination"].as_str().unwrap_or("?"),
        pod(f, "destination"),
        verdict(f),
        f["drop_reason_desc"].as_str().unwrap_or(""),
        f["Type"].as_str().unwrap_or(""),
        f["is_reply"]
    )
}
