//! Hand-written serde for the two messages whose protojson form starts with a
//! oneof (`GetFlowsResponse`, `ExportEvent`): Go's protojson prints fields in
//! declaration order, so `{"flow":…,"node_name":…,"time":…}` is the exact
//! Hubble `-o json` line. Also helpers to print and parse those lines.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::flow::{AgentEvent, DebugEvent, Flow, LostEvent};
use crate::observer::{ExportEvent, GetFlowsResponse, export_event, get_flows_response};
use crate::relay::NodeStatusEvent;
use crate::wkt::Timestamp;

/// Fields shared by the two messages, in wire order.
#[derive(Default)]
struct Parts {
    flow: Option<Flow>,
    node_status: Option<NodeStatusEvent>,
    lost_events: Option<LostEvent>,
    agent_event: Option<AgentEvent>,
    debug_event: Option<DebugEvent>,
    node_name: String,
    time: Option<Timestamp>,
}

fn deserialize_parts<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Parts, D::Error> {
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = Parts;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a {} object", self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Parts, A::Error> {
            let mut p = Parts::default();
            let mut oneofs = 0;
            while let Some(k) = m.next_key::<String>()? {
                match k.as_str() {
                    "flow" => {
                        p.flow = m.next_value()?;
                        oneofs += usize::from(p.flow.is_some());
                    }
                    "node_status" | "nodeStatus" => {
                        p.node_status = m.next_value()?;
                        oneofs += usize::from(p.node_status.is_some());
                    }
                    "lost_events" | "lostEvents" => {
                        p.lost_events = m.next_value()?;
                        oneofs += usize::from(p.lost_events.is_some());
                    }
                    "agent_event" | "agentEvent" if self.0 == "ExportEvent" => {
                        p.agent_event = m.next_value()?;
                        oneofs += usize::from(p.agent_event.is_some());
                    }
                    "debug_event" | "debugEvent" if self.0 == "ExportEvent" => {
                        p.debug_event = m.next_value()?;
                        oneofs += usize::from(p.debug_event.is_some());
                    }
                    "node_name" | "nodeName" => {
                        p.node_name = m.next_value::<Option<String>>()?.unwrap_or_default()
                    }
                    "time" => p.time = m.next_value()?,
                    _ => {
                        let _: de::IgnoredAny = m.next_value()?;
                    }
                }
            }
            if oneofs > 1 {
                return Err(de::Error::custom(format!(
                    "{}: more than one of flow, node_status, lost_events set",
                    self.0
                )));
            }
            Ok(p)
        }
    }
    d.deserialize_map(V(what))
}

fn serialize_tail<M: SerializeMap>(
    m: &mut M,
    node_name: &str,
    time: &Option<Timestamp>,
) -> Result<(), M::Error> {
    if !node_name.is_empty() {
        m.serialize_entry("node_name", node_name)?;
    }
    if let Some(t) = time {
        m.serialize_entry("time", t)?;
    }
    Ok(())
}

impl Serialize for GetFlowsResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use get_flows_response::ResponseTypes as R;
        let mut m = s.serialize_map(None)?;
        match &self.response_types {
            Some(R::Flow(f)) => m.serialize_entry("flow", f)?,
            Some(R::NodeStatus(n)) => m.serialize_entry("node_status", n)?,
            Some(R::LostEvents(l)) => m.serialize_entry("lost_events", l)?,
            None => {}
        }
        serialize_tail(&mut m, &self.node_name, &self.time)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for GetFlowsResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use get_flows_response::ResponseTypes as R;
        let p = deserialize_parts(d, "GetFlowsResponse")?;
        let response_types = p
            .flow
            .map(R::Flow)
            .or(p.node_status.map(R::NodeStatus))
            .or(p.lost_events.map(R::LostEvents));
        Ok(GetFlowsResponse {
            response_types,
            node_name: p.node_name,
            time: p.time,
        })
    }
}

impl Serialize for ExportEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use export_event::ResponseTypes as R;
        let mut m = s.serialize_map(None)?;
        match &self.response_types {
            Some(R::Flow(f)) => m.serialize_entry("flow", f)?,
            Some(R::NodeStatus(n)) => m.serialize_entry("node_status", n)?,
            Some(R::LostEvents(l)) => m.serialize_entry("lost_events", l)?,
            Some(R::AgentEvent(a)) => m.serialize_entry("agent_event", a)?,
            Some(R::DebugEvent(e)) => m.serialize_entry("debug_event", e)?,
            None => {}
        }
        serialize_tail(&mut m, &self.node_name, &self.time)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for ExportEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use export_event::ResponseTypes as R;
        let p = deserialize_parts(d, "ExportEvent")?;
        let response_types = p
            .flow
            .map(R::Flow)
            .or(p.node_status.map(R::NodeStatus))
            .or(p.lost_events.map(R::LostEvents))
            .or(p.agent_event.map(R::AgentEvent))
            .or(p.debug_event.map(R::DebugEvent));
        Ok(ExportEvent {
            response_types,
            node_name: p.node_name,
            time: p.time,
        })
    }
}

/// Prints one response the way `hubble observe -o json` does: protojson with
/// proto names, compacted and HTML-escaped by Go's `encoding/json` encoder
/// (`<`, `>`, `&`, U+2028 and U+2029 as `\u003c` …), without the newline.
pub fn to_hubble_json<T: Serialize>(v: &T) -> serde_json::Result<String> {
    let s = serde_json::to_string(v)?;
    Ok(go_html_escape(&s))
}

/// Go's `encoding/json` HTML escaping, applied to an already-encoded JSON
/// text (the characters it escapes only occur inside strings).
pub fn go_html_escape(s: &str) -> String {
    if !s.bytes().any(|b| matches!(b, b'<' | b'>' | b'&')) && !s.contains(['\u{2028}', '\u{2029}'])
    {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
