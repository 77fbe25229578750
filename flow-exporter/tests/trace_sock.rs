//! A service translation as the datapath records it (two `trace_sock_event`
//! records: before and after translation) through the exporter's pipeline:
//! decoded and enriched by the parser (the enrichment lists the service's
//! frontend), stored in the ring, and served over gRPC to the filters
//! `hubble observe` builds from `--type trace-sock`, `--verdict
//! TRANSLATED` and `--to-service empire/deathstar`.

use std::sync::Arc;
use std::time::Duration;

use ebpf::{EventHdr, TraceSockEvent, msg_type, sock_l4, xlate_point};
use flow_exporter::metrics::Metrics;
use flow_exporter::observer::Observer;
use flow_exporter::pipeline::{Batch, RawBatch, pipeline};
use flow_parser::{Enricher, Parser, StaticEnrichment};
use proto::flow::{EventTypeFilter, Flow, FlowFilter, FlowType, Verdict};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, get_flows_response::ResponseTypes};
use tonic::transport::Channel;

const ENRICHMENT: &str = r#"
endpoints:
  - {id: 200, ips: [10.244.1.8], namespace: default, pod_name: xwing, identity: 54021}
  - {id: 100, ips: [10.244.1.5], namespace: empire, pod_name: deathstar-1, identity: 15153}
services:
  - {name: deathstar, namespace: empire, ips: [10.96.0.10], ports: [80]}
"#;

/// The two records of one new connection xwing → 10.96.0.10:80 → backend
/// 10.244.1.5:8080, as `dp_lb4_trace_xlate` writes them.
fn records() -> RawBatch {
    let mut batch = RawBatch::with_capacity(2);
    for (point, ip, port, label) in [
        (xlate_point::PRE_DIRECTION_FWD, [10, 96, 0, 10], 80, 0),
        (
            xlate_point::POST_DIRECTION_FWD,
            [10, 244, 1, 5],
            8080,
            15153,
        ),
    ] {
        let mut raw = Vec::new();
        TraceSockEvent {
            hdr: EventHdr {
                source: 200,
                ktime_ns: 1_000_000,
                ..EventHdr::new(msg_type::TRACE_SOCK, point)
            },
            src_label: 54021,
            dst_label: label,
            src_ip: [10, 244, 1, 8],
            dst_ip: ip,
            dst_port: port,
            l4_proto: sock_l4::TCP,
            sock_cookie: 0xfeed,
            ..TraceSockEvent::default()
        }
        .encode(&mut raw);
        batch.push(&raw);
    }
    batch
}

async fn flows(ch: &Channel, whitelist: Vec<FlowFilter>) -> Vec<Flow> {
    let req = GetFlowsRequest {
        number: 100,
        whitelist,
        ..Default::default()
    };
    let mut s = ObserverClient::new(ch.clone())
        .get_flows(req)
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.unwrap() {
        if let Some(ResponseTypes::Flow(f)) = r.response_types {
            out.push(f);
        }
    }
    out
}

fn points(fs: &[Flow]) -> Vec<i32> {
    fs.iter().map(|f| f.sock_xlate_point).collect()
}

#[tokio::test]
async fn trace_sock_records_are_served_as_hubble_sock_flows() {
    let metrics = Arc::new(Metrics::new());
    let observer = Arc::new(
        Observer::new("node-1", 255)
            .unwrap()
            .with_metrics(metrics.clone()),
    );
    let enrichment = StaticEnrichment::from_yaml_str(ENRICHMENT).unwrap();
    let mut parser = Parser::new("node-1", Enricher::from_static(Arc::new(enrichment)));
    let clock = flow_parser::ClockOffset::new(1_700_000_000_000_000_000);
    let decode = move |raw: &[u8]| parser.decode(raw, &clock).map_err(|e| e.to_string());
    let (ingest, task) = pipeline(observer.clone(), metrics.clone(), Box::new(decode));
    tokio::spawn(task);
    ingest
        .send(Batch::Raw {
            source: "ringbuf",
            batch: records(),
        })
        .await
        .unwrap();
    for _ in 0..200 {
        if observer.status().seen_flows >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(observer.status().seen_flows, 2);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = flow_exporter::server::router(observer.clone(), addr.to_string())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let all = flows(&ch, vec![]).await;
    assert_eq!(points(&all), [1, 2]);
    for f in &all {
        assert_eq!(f.r#type, FlowType::Sock as i32);
        assert_eq!(f.socket_cookie, 0xfeed);
        assert_eq!(f.source.as_ref().unwrap().pod_name, "xwing");
        assert_eq!(f.node_name, "node-1");
        assert_eq!(f.summary, "TCP");
    }
    assert_eq!(all[0].verdict, Verdict::Traced as i32);
    let svc = all[0]
        .destination_service
        .as_ref()
        .expect("the frontend's service");
    assert_eq!(
        (svc.namespace.as_str(), svc.name.as_str()),
        ("empire", "deathstar")
    );
    assert_eq!(all[1].verdict, Verdict::Translated as i32);
    assert_eq!(all[1].destination.as_ref().unwrap().pod_name, "deathstar-1");

    // --type trace-sock
    let by_type = FlowFilter {
        event_type: vec![EventTypeFilter {
            r#type: 7,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(points(&flows(&ch, vec![by_type]).await), [1, 2]);
    // --verdict TRANSLATED
    let translated = FlowFilter {
        verdict: vec![Verdict::Translated as i32],
        ..Default::default()
    };
    assert_eq!(points(&flows(&ch, vec![translated]).await), [2]);
    // --to-service empire/deathstar
    let to_service = FlowFilter {
        destination_service: vec!["empire/deathstar".into()],
        ..Default::default()
    };
    assert_eq!(points(&flows(&ch, vec![to_service]).await), [1]);
    let _ = stop.send(());
}
