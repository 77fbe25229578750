//! Shared by the archive tests: a deterministic flow mix, an in-process
//! exporter as the source, following until N flows arrived, reading all back.

#![allow(dead_code)]

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use archiver::follow::{self, FollowOptions};
use archiver::metrics::Metrics;
use archiver::read::{Archive, Query};
use archiver::storage::{LocalDir, Storage};
use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_exporter::observer::Observer;
use flow_parser::{Enricher, Parser, Synthetic};
use proto::flow::{Endpoint, Flow, FlowFilter, Ip, Layer4, Tcp, TcpFlags, Verdict, layer4};
use proto::observer::{GetFlowsRequest, get_flows_response::ResponseTypes};
use proto::wkt::{BoolValue, Timestamp};

/// Flow `i` of a deterministic mix; times start at `t0` and step 1 ms.
pub fn flow(i: u64, t0: i64) -> Flow {
    let dropped = i.is_multiple_of(7);
    Flow {
        time: Some(Timestamp::from_unix_nanos(
            i128::from(t0) * 1_000_000_000 + i as i128 * 1_000_000,
        )),
        uuid: format!("uuid-{i:06}"),
        verdict: if dropped {
            Verdict::Dropped as i32
        } else {
            Verdict::Forwarded as i32
        },
        drop_reason: if dropped { 133 } else { 0 },
        drop_reason_desc: if dropped { 133 } else { 0 },
        ip: Some(Ip {
            source: format!("10.0.{}.{}", i % 3, i % 200),
            destination: "10.0.9.1".into(),
            ip_version: 1,
            ..Default::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(layer4::Protocol::Tcp(Tcp {
                source_port: 40000 + (i % 1000) as u32,
                destination_port: if i.is_multiple_of(2) { 80 } else { 443 },
                flags: Some(TcpFlags {
                    syn: true,
                    ..Default::default()
                }),
            })),
        }),
        source: Some(Endpoint {
            identity: 1000 + (i % 5) as u32,
            namespace: if i.is_multiple_of(3) {
                "kube-system".into()
            } else {
                "default".into()
            },
            pod_name: format!("pod-{}", i % 10),
            labels: vec![format!("k8s:app=app{}", i % 4)],
            ..Default::default()
        }),
        destination: Some(Endpoint {
            identity: 2,
            labels: vec!["reserved:world".into()],
            ..Default::default()
        }),
        node_name: "archive-node".into(),
        event_type: Some(proto::flow::CiliumEventType {
            r#type: if dropped { 1 } else { 4 },
            sub_type: 0,
        }),
        is_reply: Some(BoolValue { value: false }),
        summary: "TCP Flags: SYN".into(),
        ..Default::default()
    }
}

pub struct Source {
    pub observer: Arc<Observer>,
    pub addr: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn source(capacity: u64) -> Source {
    let observer = Arc::new(Observer::new("archive-node", capacity).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = flow_exporter::server::router(observer.clone(), addr.clone())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    Source {
        observer,
        addr,
        _stop: tx,
    }
}

pub fn opts(addr: &str) -> FollowOptions {
    FollowOptions {
        server: addr.to_owned(),
        since: None,
        writer: WriterOptions {
            file_rows: 700,
            row_group_rows: 256,
            ..WriterOptions::default()
        },
    }
}

/// Follows until `n` new flows were received, then stops (committing).
pub async fn archive_until(
    storage: Arc<dyn Storage>,
    addr: &str,
    n: u64,
) -> archiver::writer::WriterStats {
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let m = metrics.clone();
    let h = tokio::spawn(follow::run(storage, opts(addr), m, rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics.encode();
        let got = text
            .lines()
            .find(|l| l.starts_with("flow_archiver_flows_received_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if got >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "archiver received only {got} of {n} flows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    h.await.unwrap().unwrap()
}

pub fn all(storage: &Arc<dyn Storage>) -> Vec<Flow> {
    Archive::new(storage.clone())
        .query(&Query::default())
        .unwrap()
        .0
}

pub async fn live(
    src: &Source,
    whitelist: Vec<FlowFilter>,
    since: Option<Timestamp>,
) -> Vec<String> {
    let mut c =
        proto::observer::observer_client::ObserverClient::connect(format!("http://{}", src.addr))
            .await
            .unwrap();
    let req = GetFlowsRequest {
        number: u64::MAX,
        whitelist,
        since,
        ..Default::default()
    };
    let mut s = c.get_flows(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.unwrap() {
        if let Some(ResponseTypes::Flow(f)) = r.response_types {
            out.push(f.uuid);
        }
    }
    out
}

pub const T0: i64 = 1_714_557_000; // 2024-05-01T09:50:00Z: flows cross into hour 10

/// Kills the child on drop, also when the test fails.
pub struct Killed(pub Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` flows of the parser's synthetic mix (generator `seed`), each passed
/// to `shape` with its index (to set its time, strip fields...).
pub fn synthetic(seed: u64, n: usize, mut shape: impl FnMut(i64, &mut Flow)) -> Vec<Flow> {
    let mut g = Synthetic::new(seed);
    let mut p = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = std::time::UNIX_EPOCH;
    let mut raw = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        g.next_event(&mut raw);
        if let Ok(mut f) = p.decode(&raw, &clock) {
            shape(out.len() as i64, &mut f);
            out.push(f);
        }
    }
    out
}

/// Writes `flows` into a local archive at `dir` in files of `file_rows`
/// rows and row groups of `row_group_rows` (small, so that queries cross
/// many), and opens it.
pub fn write_archive(
    dir: &std::path::Path,
    flows: &[Flow],
    file_rows: u64,
    row_group_rows: usize,
) -> Archive {
    let storage = Arc::new(LocalDir::new(dir).unwrap());
    let mut w = ArchiveWriter::new(
        storage.clone(),
        WriterOptions {
            file_rows,
            row_group_rows,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for f in flows {
        w.append(f).unwrap();
    }
    w.finish().unwrap();
    Archive::new(storage)
}
