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
pub fn to_hubble_json<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    append_hubble_json(&mut buf, v)?;
    // serde_json writes UTF-8 and the escapes are ASCII.
    String::from_utf8(buf).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Writes `v` to `w` exactly as [`to_hubble_json`] prints it (the same
/// bytes, without the newline), in one pass: Go's HTML escaping is applied
/// to each string as it is written ([`GoHtmlFormatter`]) instead of to the
/// finished text, and nothing is copied into an intermediate `String`. An
/// I/O error of `w` comes back inside the `serde_json::Error`
/// (`std::io::Error::from` recovers it, kind included).
pub fn write_hubble_json<W: std::io::Write, T: Serialize + ?Sized>(
    w: W,
    v: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, GoHtmlFormatter);
    v.serialize(&mut ser)
}

/// Appends `v` to `out` exactly as [`to_hubble_json`] prints it (the same
/// bytes, without the newline): serde_json's compact text, then one scan of
/// the appended bytes for what Go escapes (a branch-free pass over the
/// line, cheaper than checking each string as it is written); only a line
/// holding one is escaped again ([`go_html_escape`]'s rules). On an error
/// nothing is appended.
pub fn append_hubble_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    v: &T,
) -> serde_json::Result<()> {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, v) {
        out.truncate(start);
        return Err(e);
    }
    if out[start..]
        .chunks(64)
        .any(|c| c.iter().fold(false, |hit, &b| hit | may_escape(b)))
    {
        let line = out.split_off(start);
        // serde_json wrote UTF-8, and `str` escaping equals the formatter's.
        let text = String::from_utf8(line).map_err(|e| serde::ser::Error::custom(e.to_string()))?;
        out.extend_from_slice(go_html_escape(&text).as_bytes());
    }
    Ok(())
}

/// serde_json's compact formatting with Go's `encoding/json` HTML escaping
/// inside strings (`<`, `>`, `&`, U+2028, U+2029 as `\u003c` …), which is
/// where [`go_html_escape`] finds them in a finished JSON text (keys
/// included); everything else is serde_json's own (`CompactFormatter`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GoHtmlFormatter;

/// Whether a byte may start something Go escapes: `<`, `>`, `&`, or the
/// first byte of U+2028/U+2029 (`E2 80 A8`/`E2 80 A9`).
#[inline]
fn may_escape(b: u8) -> bool {
    matches!(b, b'<' | b'>' | b'&' | 0xE2)
}

impl serde_json::ser::Formatter for GoHtmlFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let b = fragment.as_bytes();
        // Most strings hold none of the four: a branch-free scan (which
        // the compiler vectorises) proves it before any byte is looked at
        // twice.
        if !b.iter().fold(false, |hit, &c| hit | may_escape(c)) {
            return w.write_all(b);
        }
        let mut start = 0;
        let mut i = 0;
        while i < b.len() {
            let (esc, len): (&[u8], usize) = match b[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xE2 if b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0xA8) => {
                    (b"\\u2028", 3)
                }
                0xE2 if b.get(i + 1) == Some(&0x80) && b.get(i + 2) == Some(&0xA9) => {
                    (b"\\u2029", 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            w.write_all(&b[start..i])?;
            w.write_all(esc)?;
            i += len;
            start = i;
        }
        w.write_all(&b[start..])
    }
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
