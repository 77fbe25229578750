//! `GetFlowsRequest.field_mask`: only the listed Flow fields are returned.
//!
//! Paths use proto field names (`time`, `IP`, `l4`, `source.pod_name`,
//! `Summary`), as the Hubble CLI sends them. They are validated once per
//! request; unknown paths are an `InvalidArgument`. The common paths (whole
//! top-level fields and fields of `source`/`destination`) are copied
//! directly; any other nested path goes through the flow's JSON form, which
//! is slower but exact.

use proto::flow::{Endpoint, Flow};

/// A compiled field mask.
#[derive(Debug, Clone, Default)]
pub struct FlowMask {
    top: Vec<Top>,
    source: Vec<EndpointField>,
    destination: Vec<EndpointField>,
    /// Nested paths handled through JSON, e.g. `IP.source`.
    json_paths: Vec<Vec<String>>,
}

/// An invalid field-mask path.
#[derive(Debug, thiserror::Error)]
#[error("invalid field mask path {path:?}: {reason}")]
pub struct MaskError {
    /// The offending path.
    pub path: String,
    /// Why it was rejected.
    pub reason: String,
}

macro_rules! top_fields {
    ($($name:literal => $field:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[expect(non_camel_case_types, reason = "variants mirror proto field names")]
        enum Top { $($field),* }

        impl Top {
            fn parse(name: &str) -> Option<Top> {
                match name { $($name => Some(Top::$field),)* _ => None }
            }
            fn copy(self, from: &Flow, to: &mut Flow) {
                match self { $(Top::$field => to.$field = from.$field.clone(),)* }
            }
        }
    };
}

top_fields! {
    "time" => time, "uuid" => uuid, "emitter" => emitter, "verdict" => verdict,
    "drop_reason" => drop_reason, "auth_type" => auth_type, "ethernet" => ethernet,
    "IP" => ip, "l4" => l4, "tunnel" => tunnel, "source" => source,
    "destination" => destination, "Type" => r#type, "node_name" => node_name,
    "node_labels" => node_labels, "source_names" => source_names,
    "destination_names" => destination_names, "l7" => l7, "reply" => reply,
    "event_type" => event_type, "source_service" => source_service,
    "destination_service" => destination_service, "traffic_direction" => traffic_direction,
    "policy_match_type" => policy_match_type,
    "trace_observation_point" => trace_observation_point, "trace_reason" => trace_reason,
    "file" => file, "drop_reason_desc" => drop_reason_desc, "is_reply" => is_reply,
    "debug_capture_point" => debug_capture_point, "interface" => interface,
    "proxy_port" => proxy_port, "trace_context" => trace_context,
    "sock_xlate_point" => sock_xlate_point, "socket_cookie" => socket_cookie,
    "cgroup_id" => cgroup_id, "ip_trace_id" => ip_trace_id, "Summary" => summary,
    "extensions" => extensions, "egress_allowed_by" => egress_allowed_by,
    "ingress_allowed_by" => ingress_allowed_by, "egress_denied_by" => egress_denied_by,
    "ingress_denied_by" => ingress_denied_by, "policy_log" => policy_log,
    "aggregate" => aggregate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointField {
    Id,
    Identity,
    ClusterName,
    Namespace,
    Labels,
    PodName,
    Workloads,
}

impl EndpointField {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ID" => Self::Id,
            "identity" => Self::Identity,
            "cluster_name" => Self::ClusterName,
            "namespace" => Self::Namespace,
            "labels" => Self::Labels,
            "pod_name" => Self::PodName,
            "workloads" => Self::Workloads,
            _ => return None,
        })
    }

    fn copy(self, from: &Endpoint, to: &mut Endpoint) {
        match self {
            Self::Id => to.id = from.id,
            Self::Identity => to.identity = from.identity,
            Self::ClusterName => to.cluster_name = from.cluster_name.clone(),
            Self::Namespace => to.namespace = from.namespace.clone(),
            Self::Labels => to.labels = from.labels.clone(),
            Self::PodName => to.pod_name = from.pod_name.clone(),
            Self::Workloads => to.workloads = from.workloads.clone(),
        }
    }
}

impl FlowMask {
    /// Compiles the paths of a field mask. An empty list means "no mask".
    pub fn compile(paths: &[String]) -> Result<Option<FlowMask>, MaskError> {
        if paths.is_empty() {
            return Ok(None);
        }
        let mut m = FlowMask::default();
        let err = |p: &str, r: &str| MaskError {
            path: p.to_owned(),
            reason: r.to_owned(),
        };
        for path in paths {
            let mut parts = path.split('.');
            let head = parts.next().unwrap_or_default();
            let rest: Vec<&str> = parts.collect();
            let top = Top::parse(head).ok_or_else(|| err(path, "no such field in flow.Flow"))?;
            if rest.is_empty() {
                if !m.top.contains(&top) {
                    m.top.push(top);
                }
                continue;
            }
            match top {
                Top::source | Top::destination if rest.len() == 1 => {
                    let f = EndpointField::parse(rest[0])
                        .ok_or_else(|| err(path, "no such field in flow.Endpoint"))?;
                    let list = if top == Top::source {
                        &mut m.source
                    } else {
                        &mut m.destination
                    };
                    list.push(f);
                }
                _ => {
                    validate_nested(head, &rest).map_err(|r| err(path, &r))?;
                    let mut p = vec![head.to_owned()];
                    p.extend(rest.iter().map(|s| (*s).to_owned()));
                    m.json_paths.push(p);
                }
            }
        }
        Ok(Some(m))
    }

    /// A new flow holding only the masked fields of `flow`.
    pub fn apply(&self, flow: &Flow) -> Flow {
        let mut out = Flow::default();
        for t in &self.top {
            t.copy(flow, &mut out);
        }
        for (fields, from, to) in [
            (&self.source, &flow.source, &mut out.source),
            (&self.destination, &flow.destination, &mut out.destination),
        ] {
            if fields.is_empty() {
                continue;
            }
            if let Some(src) = from {
                let dst = to.get_or_insert_with(Default::default);
                for f in fields {
                    f.copy(src, dst);
                }
            }
        }
        if !self.json_paths.is_empty() {
            out = merge_json_paths(flow, out, &self.json_paths);
        }
        out
    }
}

/// Known sub-fields of nested messages, for validation of JSON-handled paths.
fn validate_nested(head: &str, rest: &[&str]) -> Result<(), String> {
    let known: &[&str] = match head {
        "IP" => &[
            "source",
            "source_xlated",
            "destination",
            "ipVersion",
            "encrypted",
        ],
        "ethernet" => &["source", "destination"],
        "l4" => &["TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP", "VRRP", "IGMP"],
        "event_type" => &["type", "sub_type"],
        "source_service" | "destination_service" => &["name", "namespace"],
        "interface" => &["index", "name"],
        "l7" => &["type", "latency_ns", "dns", "http", "kafka"],
        "tunnel" => &["protocol", "IP", "l4", "vni"],
        "file" => &["name", "line"],
        "trace_context" => &["parent"],
        "ip_trace_id" => &["trace_id", "ip_option_type"],
        "emitter" => &["name", "version"],
        "aggregate" => &[
            "ingress_flow_count",
            "egress_flow_count",
            "unknown_direction_flow_count",
        ],
        _ => return Err(format!("field {head} has no sub-fields that can be masked")),
    };
    if !known.contains(&rest[0]) {
        return Err(format!("no such field {} in {head}", rest[0]));
    }
    Ok(())
}

fn merge_json_paths(flow: &Flow, out: Flow, paths: &[Vec<String>]) -> Flow {
    let (Ok(src), Ok(mut dst)) = (serde_json::to_value(flow), serde_json::to_value(&out)) else {
        return out;
    };
    for p in paths {
        let mut s = &src;
        let mut found = true;
        for k in p {
            match s.get(k) {
                Some(v) => s = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut d = &mut dst;
        for k in &p[..p.len() - 1] {
            if !d.get(k).is_some_and(|v| v.is_object()) {
                d[k.as_str()] = serde_json::Value::Object(Default::default());
            }
            d = &mut d[k.as_str()];
        }
        d[p[p.len() - 1].as_str()] = s.clone();
    }
    serde_json::from_value(dst).unwrap_or(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::{Ip, IpVersion};
    use proto::wkt::Timestamp;

    fn flow() -> Flow {
        Flow {
            time: Some(Timestamp {
                seconds: 1,
                nanos: 2,
            }),
            verdict: 2,
            ip: Some(Ip {
                source: "10.0.0.1".into(),
                destination: "10.0.0.2".into(),
                ip_version: IpVersion::IPv4 as i32,
                ..Default::default()
            }),
            source: Some(Endpoint {
                id: 7,
                identity: 1234,
                namespace: "default".into(),
                pod_name: "xwing".into(),
                labels: vec!["k8s:org=alliance".into()],
                ..Default::default()
            }),
            node_name: "node-1".into(),
            summary: "TCP Flags: SYN".into(),
            ..Default::default()
        }
    }

    #[test]
    fn empty_mask_is_none() {
        assert!(FlowMask::compile(&[]).unwrap().is_none());
    }

    #[test]
    fn top_level_and_endpoint_fields() {
        let paths: Vec<String> = [
            "time",
            "verdict",
            "source.pod_name",
            "source.identity",
            "Summary",
        ]
        .map(String::from)
        .into();
        let m = FlowMask::compile(&paths).unwrap().unwrap();
        let out = m.apply(&flow());
        assert_eq!(out.time, flow().time);
        assert_eq!(out.verdict, 2);
        assert_eq!(out.summary, "TCP Flags: SYN");
        let src = out.source.unwrap();
        assert_eq!(src.pod_name, "xwing");
        assert_eq!(src.identity, 1234);
        assert!(src.labels.is_empty());
        assert!(out.ip.is_none());
        assert!(out.node_name.is_empty());
    }

    #[test]
    fn nested_path_through_json() {
        let m = FlowMask::compile(&["IP.source".to_owned()])
            .unwrap()
            .unwrap();
        let out = m.apply(&flow());
        let ip = out.ip.unwrap();
        assert_eq!(ip.source, "10.0.0.1");
        assert!(ip.destination.is_empty());
    }

    #[test]
    fn unknown_paths_are_rejected() {
        for p in ["nope", "source.nope", "verdict.x", "IP.nope"] {
            let e = FlowMask::compile(&[p.to_owned()]).unwrap_err();
            assert_eq!(e.path, p);
        }
    }
}
