//! Test fixtures: a small builder of flows and helpers that compile filters
//! through the public API, so every dimension is tested the way servers use it.

use proto::flow::{
    CiliumEventType, Dns, Endpoint, Flow, FlowFilter, Http, HttpHeader, IcmPv4, IcmPv6, Igmp, Ip,
    IpTraceId, IpVersion, Kafka, Layer4, Layer7, NetworkInterface, Sctp, Service, Tcp, TcpFlags,
    TraceContext, TraceParent, TrafficDirection, Udp, Verdict, Vrrp, Workload, layer4, layer7,
};
use proto::wkt::BoolValue;

use crate::{FilterError, FilterSet};

/// An empty FlowFilter, for `FlowFilter { field: …, ..ff() }`.
pub(crate) fn ff() -> FlowFilter {
    FlowFilter::default()
}

/// Owned strings from literals.
pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Whether the allow list selects the flow (panics if it does not compile).
pub(crate) fn allows(allow: &[FlowFilter], flow: &Flow) -> bool {
    FilterSet::compile(allow, &[])
        .expect("filter compiles")
        .matches(flow)
}

/// Whether the deny list excludes the flow (panics if it does not compile).
pub(crate) fn denies(deny: &[FlowFilter], flow: &Flow) -> bool {
    !FilterSet::compile(&[], deny)
        .expect("filter compiles")
        .matches(flow)
}

/// Asserts that the filters select the flow as an allow list exactly when
/// they exclude it as a deny list, and that this is `want`.
#[track_caller]
pub(crate) fn check(filters: &[FlowFilter], flow: &Flow, want: bool) {
    assert_eq!(allows(filters, flow), want, "allow list {filters:?}");
    assert_eq!(denies(filters, flow), want, "deny list {filters:?}");
}

/// The error of a filter that must not compile.
pub(crate) fn compile_error(f: FlowFilter) -> FilterError {
    FilterSet::compile(&[f], &[]).expect_err("filter must not compile")
}

/// Builds flows field by field; unset parts stay `None`/empty.
#[derive(Debug, Default)]
pub(crate) struct FlowBuilder(Flow);

impl FlowBuilder {
    pub(crate) fn new() -> Self {
        FlowBuilder::default()
    }

    pub(crate) fn build(self) -> Flow {
        self.0
    }

    fn ip(&mut self) -> &mut Ip {
        self.0.ip.get_or_insert_with(Ip::default)
    }

    fn endpoint(&mut self, source: bool) -> &mut Endpoint {
        let ep = if source {
            &mut self.0.source
        } else {
            &mut self.0.destination
        };
        ep.get_or_insert_with(Endpoint::default)
    }

    pub(crate) fn uuid(mut self, id: &str) -> Self {
        self.0.uuid = id.into();
        self
    }

    pub(crate) fn src_ip(mut self, ip: &str) -> Self {
        self.ip().source = ip.into();
        self
    }

    pub(crate) fn dst_ip(mut self, ip: &str) -> Self {
        self.ip().destination = ip.into();
        self
    }

    pub(crate) fn src_ip_xlated(mut self, ip: &str) -> Self {
        self.ip().source_xlated = ip.into();
        self
    }

    pub(crate) fn ip_version(mut self, v: IpVersion) -> Self {
        self.ip().ip_version = v as i32;
        self
    }

    pub(crate) fn encrypted(mut self, e: bool) -> Self {
        self.ip().encrypted = e;
        self
    }

    pub(crate) fn src_pod(mut self, ns: &str, name: &str) -> Self {
        let ep = self.endpoint(true);
        ep.namespace = ns.into();
        ep.pod_name = name.into();
        self
    }

    pub(crate) fn dst_pod(mut self, ns: &str, name: &str) -> Self {
        let ep = self.endpoint(false);
        ep.namespace = ns.into();
        ep.pod_name = name.into();
        self
    }

    pub(crate) fn src_labels(mut self, labels: &[&str]) -> Self {
        self.endpoint(true).labels = strings(labels);
        self
    }

    pub(crate) fn dst_labels(mut self, labels: &[&str]) -> Self {
        self.endpoint(false).labels = strings(labels);
        self
    }

    pub(crate) fn src_identity(mut self, id: u32) -> Self {
        self.endpoint(true).identity = id;
        self
    }

    pub(crate) fn dst_identity(mut self, id: u32) -> Self {
        self.endpoint(false).identity = id;
        self
    }

    pub(crate) fn src_cluster(mut self, name: &str) -> Self {
        self.endpoint(true).cluster_name = name.into();
        self
    }

    pub(crate) fn dst_cluster(mut self, name: &str) -> Self {
        self.endpoint(false).cluster_name = name.into();
        self
    }

    pub(crate) fn src_workload(mut self, kind: &str, name: &str) -> Self {
        self.endpoint(true).workloads.push(Workload {
            name: name.into(),
            kind: kind.into(),
        });
        self
    }

    pub(crate) fn dst_workload(mut self, kind: &str, name: &str) -> Self {
        self.endpoint(false).workloads.push(Workload {
            name: name.into(),
            kind: kind.into(),
        });
        self
    }

    pub(crate) fn src_service(mut self, ns: &str, name: &str) -> Self {
        self.0.source_service = Some(Service {
            name: name.into(),
            namespace: ns.into(),
        });
        self
    }

    pub(crate) fn dst_service(mut self, ns: &str, name: &str) -> Self {
        self.0.destination_service = Some(Service {
            name: name.into(),
            namespace: ns.into(),
        });
        self
    }

    pub(crate) fn src_names(mut self, names: &[&str]) -> Self {
        self.0.source_names = strings(names);
        self
    }

    pub(crate) fn dst_names(mut self, names: &[&str]) -> Self {
        self.0.destination_names = strings(names);
        self
    }

    pub(crate) fn verdict(mut self, v: Verdict) -> Self {
        self.0.verdict = v as i32;
        self
    }

    pub(crate) fn drop_reason(mut self, r: proto::flow::DropReason) -> Self {
        self.0.drop_reason_desc = r as i32;
        self
    }

    pub(crate) fn traffic_direction(mut self, d: TrafficDirection) -> Self {
        self.0.traffic_direction = d as i32;
        self
    }

    pub(crate) fn reply(mut self, reply: Option<bool>) -> Self {
        self.0.is_reply = reply.map(BoolValue::from);
        self
    }

    pub(crate) fn event_type(mut self, t: i32, sub: i32) -> Self {
        self.0.event_type = Some(CiliumEventType {
            r#type: t,
            sub_type: sub,
        });
        self
    }

    pub(crate) fn node_name(mut self, name: &str) -> Self {
        self.0.node_name = name.into();
        self
    }

    pub(crate) fn node_labels(mut self, labels: &[&str]) -> Self {
        self.0.node_labels = strings(labels);
        self
    }

    pub(crate) fn interface(mut self, index: u32, name: &str) -> Self {
        self.0.interface = Some(NetworkInterface {
            index,
            name: name.into(),
        });
        self
    }

    pub(crate) fn trace_id(mut self, id: &str) -> Self {
        self.0.trace_context = Some(TraceContext {
            parent: Some(TraceParent {
                trace_id: id.into(),
            }),
        });
        self
    }

    pub(crate) fn ip_trace_id(mut self, id: u64) -> Self {
        self.0.ip_trace_id = Some(IpTraceId {
            trace_id: id,
            ip_option_type: 0,
        });
        self
    }

    fn l4(mut self, p: layer4::Protocol) -> Self {
        self.0.l4 = Some(Layer4 { protocol: Some(p) });
        self
    }

    pub(crate) fn tcp(self, sport: u32, dport: u32) -> Self {
        self.l4(layer4::Protocol::Tcp(Tcp {
            source_port: sport,
            destination_port: dport,
            flags: None,
        }))
    }

    /// A TCP flow with the flags named in `flags` (e.g. `"syn,ack"`) set.
    pub(crate) fn tcp_flags(self, flags: &str) -> Self {
        let mut f = TcpFlags::default();
        for name in flags.split(',').filter(|s| !s.is_empty()) {
            match name {
                "fin" => f.fin = true,
                "syn" => f.syn = true,
                "rst" => f.rst = true,
                "psh" => f.psh = true,
                "ack" => f.ack = true,
                "urg" => f.urg = true,
                "ece" => f.ece = true,
                "cwr" => f.cwr = true,
                "ns" => f.ns = true,
                other => panic!("unknown flag {other}"),
            }
        }
        self.l4(layer4::Protocol::Tcp(Tcp {
            source_port: 1,
            destination_port: 2,
            flags: Some(f),
        }))
    }

    pub(crate) fn udp(self, sport: u32, dport: u32) -> Self {
        self.l4(layer4::Protocol::Udp(Udp {
            source_port: sport,
            destination_port: dport,
        }))
    }

    pub(crate) fn sctp(self, sport: u32, dport: u32) -> Self {
        self.l4(layer4::Protocol::Sctp(Sctp {
            source_port: sport,
            destination_port: dport,
        }))
    }

    pub(crate) fn icmpv4(self) -> Self {
        self.l4(layer4::Protocol::IcmPv4(IcmPv4::default()))
    }

    pub(crate) fn icmpv6(self) -> Self {
        self.l4(layer4::Protocol::IcmPv6(IcmPv6::default()))
    }

    pub(crate) fn vrrp(self) -> Self {
        self.l4(layer4::Protocol::Vrrp(Vrrp::default()))
    }

    pub(crate) fn igmp(self) -> Self {
        self.l4(layer4::Protocol::Igmp(Igmp::default()))
    }

    fn l7(mut self, r: layer7::Record) -> Self {
        self.0.l7 = Some(Layer7 {
            r#type: 0,
            latency_ns: 0,
            record: Some(r),
        });
        self.0.event_type = Some(CiliumEventType {
            r#type: crate::defaults::EVENT_TYPE_L7,
            sub_type: 0,
        });
        self
    }

    pub(crate) fn dns(self, query: &str) -> Self {
        self.l7(layer7::Record::Dns(Dns {
            query: query.into(),
            ..Dns::default()
        }))
    }

    /// An L7 HTTP flow; `headers` are `key:value` pairs.
    pub(crate) fn http(self, code: u32, method: &str, url: &str, headers: &[(&str, &str)]) -> Self {
        self.l7(layer7::Record::Http(Http {
            code,
            method: method.into(),
            url: url.into(),
            protocol: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(k, v)| HttpHeader {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }))
    }

    #[expect(
        deprecated,
        reason = "Kafka records are deprecated upstream but still filterable"
    )]
    pub(crate) fn kafka(self) -> Self {
        self.l7(layer7::Record::Kafka(Kafka::default()))
    }
}
