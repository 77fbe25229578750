//! `hubble observe agent-events` / `debug-events` and `hubble reflect`:
//! printing against an in-process Observer that serves canned events, the
//! Unimplemented error of the real exporter, reflection against the real
//! exporter, and the help listings.

mod common;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use proto::flow::{
    AgentEvent, AgentEventType, DebugEvent, DebugEventType, Endpoint, EndpointRegenNotification,
    PolicyUpdateNotification, TimeNotification, agent_event::Notification,
};
use proto::observer::observer_server::{Observer, ObserverServer};
use proto::observer::{
    GetAgentEventsRequest, GetAgentEventsResponse, GetDebugEventsRequest, GetDebugEventsResponse,
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, ServerStatusRequest, ServerStatusResponse,
};
use proto::wkt::{Int32Value, Timestamp, UInt32Value};
use tonic::{Request, Response, Status};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn agent_events() -> Vec<GetAgentEventsResponse> {
    vec![
        GetAgentEventsResponse {
            agent_event: Some(AgentEvent {
                r#type: AgentEventType::AgentStarted as i32,
                notification: Some(Notification::AgentStart(TimeNotification {
                    time: ts(1_700_000_000, 0),
                })),
            }),
            node_name: "kind/node-1".into(),
            time: ts(1_700_000_000, 123_000_000),
        },
        GetAgentEventsResponse {
            agent_event: Some(AgentEvent {
                r#type: AgentEventType::PolicyUpdated as i32,
                notification: Some(Notification::PolicyUpdate(PolicyUpdateNotification {
                    labels: vec!["k8s:app=a".into(), "k8s:app=b".into()],
                    revision: 7,
                    rule_count: 2,
                })),
            }),
            node_name: "kind/node-1".into(),
            time: ts(1_700_000_001, 0),
        },
        GetAgentEventsResponse {
            agent_event: Some(AgentEvent {
                r#type: AgentEventType::EndpointRegenerateFailure as i32,
                notification: Some(Notification::EndpointRegenerate(
                    EndpointRegenNotification {
                        id: 42,
                        labels: vec!["k8s:app=x".into()],
                        error: "boom".into(),
                    },
                )),
            }),
            node_name: "kind/node-2".into(),
            time: ts(1_700_000_002, 500_000_000),
        },
    ]
}

fn debug_events() -> Vec<GetDebugEventsResponse> {
    vec![
        GetDebugEventsResponse {
            debug_event: Some(DebugEvent {
                r#type: DebugEventType::DbgCtLookup as i32,
                source: Some(Endpoint {
                    id: 1234,
                    identity: 5678,
                    namespace: "default".into(),
                    pod_name: "xwing".into(),
                    ..Default::default()
                }),
                hash: Some(UInt32Value { value: 0xbeef }),
                arg1: Some(UInt32Value { value: 1 }),
                arg2: None,
                arg3: None,
                message: "Conntrack lookup 1/2: src=10.0.0.1:80".into(),
                cpu: Some(Int32Value { value: 3 }),
            }),
            node_name: "kind/node-1".into(),
            time: ts(1_700_000_000, 0),
        },
        GetDebugEventsResponse {
            debug_event: Some(DebugEvent {
                r#type: DebugEventType::DbgGeneric as i32,
                source: Some(Endpoint {
                    id: 7,
                    labels: vec!["reserved:host".into()],
                    ..Default::default()
                }),
                hash: Some(UInt32Value { value: 16 }),
                message: "hello".into(),
                cpu: Some(Int32Value { value: 11 }),
                ..Default::default()
            }),
            node_name: "kind/node-1".into(),
            time: ts(1_700_000_001, 0),
        },
    ]
}

/// The requests the canned server received.
#[derive(Default)]
struct Seen {
    agent: Vec<GetAgentEventsRequest>,
    debug: Vec<GetDebugEventsRequest>,
}

struct Canned(Arc<Mutex<Seen>>);

#[tonic::async_trait]
impl Observer for Canned {
    type GetFlowsStream = BoxStream<GetFlowsResponse>;
    type GetAgentEventsStream = BoxStream<GetAgentEventsResponse>;
    type GetDebugEventsStream = BoxStream<GetDebugEventsResponse>;

    async fn get_flows(
        &self,
        _: Request<GetFlowsRequest>,
    ) -> Result<Response<Self::GetFlowsStream>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn get_agent_events(
        &self,
        r: Request<GetAgentEventsRequest>,
    ) -> Result<Response<Self::GetAgentEventsStream>, Status> {
        self.0.lock().unwrap().agent.push(r.into_inner());
        Ok(Response::new(Box::pin(futures::stream::iter(
            agent_events().into_iter().map(Ok),
        ))))
    }
    async fn get_debug_events(
        &self,
        r: Request<GetDebugEventsRequest>,
    ) -> Result<Response<Self::GetDebugEventsStream>, Status> {
        self.0.lock().unwrap().debug.push(r.into_inner());
        Ok(Response::new(Box::pin(futures::stream::iter(
            debug_events().into_iter().map(Ok),
        ))))
    }
    async fn get_nodes(
        &self,
        _: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn get_namespaces(
        &self,
        _: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn server_status(
        &self,
        _: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
}

/// The canned server on a free loopback port; stops when dropped.
struct CannedServer {
    addr: String,
    seen: Arc<Mutex<Seen>>,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn canned() -> CannedServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let svc = ObserverServer::new(Canned(seen.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        addr.to_string()
    });
    CannedServer {
        addr,
        seen,
        rt: Some(rt),
        stop: Some(tx),
    }
}

#[test]
fn agent_events_compact_and_default_selector() {
    let s = canned();
    let r = common::run(&["observe", "agent-events", "--server", &s.addr]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "Nov 14 22:13:20.123: AGENT_STARTED (start time: Nov 14 22:13:20.000)\n\
         Nov 14 22:13:21.000: POLICY_UPDATED (labels: [k8s:app=a,k8s:app=b], revision: 7, count: 2)\n\
         Nov 14 22:13:22.500: ENDPOINT_REGENERATE_FAILURE (id: 42, labels: [k8s:app=x], error: boom)\n"
    );
    let seen = s.seen.lock().unwrap();
    assert_eq!(
        seen.agent,
        vec![GetAgentEventsRequest {
            number: 20,
            ..Default::default()
        }]
    );
}

#[test]
fn agent_events_node_name_and_selectors() {
    let s = canned();
    let r = common::run(&[
        "observe",
        "agent-events",
        "--server",
        &s.addr,
        "--print-node-name",
        "--first",
        "5",
        "--time-format",
        "RFC3339Milli",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = r.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "2023-11-14T22:13:20.123Z [kind/node-1]: AGENT_STARTED (start time: 2023-11-14T22:13:20Z)"
    );
    let seen = s.seen.lock().unwrap();
    assert_eq!(
        seen.agent,
        vec![GetAgentEventsRequest {
            number: 5,
            first: true,
            ..Default::default()
        }]
    );
    drop(seen);
    let r = common::run(&[
        "observe",
        "agent-events",
        "--server",
        &s.addr,
        "--first",
        "5",
        "--follow",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "cannot set both --first and --follow\n");
}

#[test]
fn agent_events_json() {
    let s = canned();
    for o in ["json", "jsonpb"] {
        let r = common::run(&["observe", "agent-events", "--server", &s.addr, "-o", o]);
        assert_eq!(r.code, 0, "{r:?}");
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"agent_event":{"type":"AGENT_STARTED","agent_start":{"time":"2023-11-14T22:13:20Z"}},"node_name":"kind/node-1","time":"2023-11-14T22:13:20.123Z"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"agent_event":{"type":"POLICY_UPDATED","policy_update":{"labels":["k8s:app=a","k8s:app=b"],"revision":"7","rule_count":"2"}},"node_name":"kind/node-1","time":"2023-11-14T22:13:21Z"}"#
        );
        assert_eq!(lines.len(), 3);
    }
}

#[test]
fn agent_events_dict_and_table() {
    let s = canned();
    let r = common::run(&["observe", "agent-events", "--server", &s.addr, "-o", "dict"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(
            "  TIMESTAMP: Nov 14 22:13:20.123\n       TYPE: AGENT_STARTED\n    DETAILS: start time: Nov 14 22:13:20.000\n------------\n"
        ),
        "{}",
        r.stdout
    );
    let r = common::run(&[
        "observe",
        "agent-events",
        "--server",
        &s.addr,
        "-o",
        "table",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("TIMESTAMP"), "{}", r.stdout);
    assert!(lines[0].contains("TYPE") && lines[0].contains("DETAILS"));
}

#[test]
fn debug_events_compact_and_json() {
    let s = canned();
    let r = common::run(&[
        "observe",
        "debug-events",
        "--server",
        &s.addr,
        "--print-node-name",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "Nov 14 22:13:20.000 [kind/node-1]: default/xwing (ID: 1234) DBG_CT_LOOKUP MARK: 0xbeef CPU: 03 (Conntrack lookup 1/2: src=10.0.0.1:80)\n\
         Nov 14 22:13:21.000 [kind/node-1]: reserved:host (ID: 7) DBG_GENERIC MARK: 0x10 CPU: 11 (hello)\n"
    );
    assert_eq!(
        s.seen.lock().unwrap().debug,
        vec![GetDebugEventsRequest {
            number: 20,
            ..Default::default()
        }]
    );
    let r = common::run(&["observe", "debug-events", "--server", &s.addr, "-o", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        r#"{"debug_event":{"type":"DBG_CT_LOOKUP","source":{"ID":1234,"identity":5678,"namespace":"default","pod_name":"xwing"},"hash":48879,"arg1":1,"message":"Conntrack lookup 1/2: src=10.0.0.1:80","cpu":3},"node_name":"kind/node-1","time":"2023-11-14T22:13:20Z"}"#
    );
}

#[test]
fn events_unimplemented_by_exporter() {
    let server = common::start();
    let r = common::run(&["observe", "agent-events", "--server", &server.addr]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with(
            "rpc error: code = Unimplemented desc = GetAgentEvents is not implemented"
        ),
        "{}",
        r.stderr
    );
    let r = common::run(&["observe", "debug-events", "--server", &server.addr]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with(
            "rpc error: code = Unimplemented desc = GetDebugEvents is not implemented"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn reflect_lists_services_without_reflection_and_health() {
    let server = common::start();
    let r = common::run(&["reflect", "--server", &server.addr]);
    assert_eq!(r.code, 0, "{r:?}");
    let services: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(services, vec!["observer.Observer", "peer.Peer"]);
}

#[test]
fn reflect_without_reflection_service_fails() {
    let s = canned();
    let r = common::run(&["reflect", "--server", &s.addr]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("failed to list services: rpc error: code = Unimplemented"),
        "{}",
        r.stderr
    );
}

#[test]
fn help_lists_the_new_commands() {
    let r = common::run(&["--help"]);
    assert!(r.stdout.contains("\n  reflect "), "{}", r.stdout);
    let r = common::run(&["observe", "--help"]);
    assert!(r.stdout.contains("\n  agent-events "), "{}", r.stdout);
    assert!(r.stdout.contains("\n  debug-events "), "{}", r.stdout);
    let r = common::run(&["observe", "agent-events", "--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--follow") && !r.stdout.contains("--verdict"));
}
