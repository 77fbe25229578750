//! `hubble observe --aggregate-by FIELDS`: flows grouped by the values of
//! some of their fields (paths as in field masks, e.g. `source.namespace`,
//! `l4.TCP.destination_port`, `verdict`), each group with its count and its
//! first and last flow time; printed as a table sorted by count, or as one
//! JSON object per group.
//!
//! A field is read from the flow's Hubble JSON (proto names, enums by
//! name), so a path means what it means in a field mask or in `-o json`;
//! a path the flow does not have groups as empty (`null` in JSON).

use std::collections::HashMap;
use std::io::{self, Write};

use proto::flow::Flow;
use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::wkt::Timestamp;
use serde_json::Value;

use crate::gotime::{TimeFormat, fmt_timestamp};
use crate::printer::tabwriter::TabWriter;

/// One group: its field values (JSON, `Null` when absent), its count and
/// the times of its first and last flows.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The grouped fields' values, in the order of the paths.
    pub values: Vec<Value>,
    /// Flows in the group.
    pub count: u64,
    /// The earliest flow time seen.
    pub first: Option<Timestamp>,
    /// The latest flow time seen.
    pub last: Option<Timestamp>,
}

/// Groups flows by the values of `paths`.
#[derive(Debug, Clone)]
pub struct Aggregator {
    paths: Vec<Vec<String>>,
    names: Vec<String>,
    groups: HashMap<String, Group>,
    /// Events the server reported lost while aggregating.
    pub lost: u64,
}

fn earlier(a: &Timestamp, b: &Timestamp) -> bool {
    (a.seconds, a.nanos) < (b.seconds, b.nanos)
}

impl Aggregator {
    /// An aggregator over the field paths `paths` (already validated).
    pub fn new(paths: &[String]) -> Self {
        Aggregator {
            paths: paths
                .iter()
                .map(|p| p.split('.').map(str::to_owned).collect())
                .collect(),
            names: paths.to_vec(),
            groups: HashMap::new(),
            lost: 0,
        }
    }

    /// The field paths, as given.
    pub fn paths(&self) -> &[String] {
        &self.names
    }

    /// Counts one response: a flow joins its group, lost events are summed,
    /// anything else is ignored.
    pub fn add_response(&mut self, res: &GetFlowsResponse) {
        match &res.response_types {
            Some(ResponseTypes::Flow(f)) => self.add(f),
            Some(ResponseTypes::LostEvents(l)) => self.lost += l.num_events_lost,
            _ => {}
        }
    }

    /// Counts one flow.
    pub fn add(&mut self, f: &Flow) {
        let json = serde_json::to_value(f).unwrap_or(Value::Null);
        let values: Vec<Value> = self
            .paths
            .iter()
            .map(|p| {
                p.iter()
                    .try_fold(&json, |v, k| v.get(k))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        let key = serde_json::to_string(&values).unwrap_or_default();
        let g = self.groups.entry(key).or_insert_with(|| Group {
            values,
            count: 0,
            first: None,
            last: None,
        });
        g.count += 1;
        if let Some(t) = &f.time {
            if g.first.as_ref().is_none_or(|first| earlier(t, first)) {
                g.first = Some(*t);
            }
            if g.last.as_ref().is_none_or(|last| earlier(last, t)) {
                g.last = Some(*t);
            }
        }
    }

    /// Adds a group counted elsewhere (the archive's columnar aggregation,
    /// `archiver::columnar`): `values` in the order of the paths, as
    /// [`Aggregator::add`] would read them from the flows' JSON. Merges with
    /// a group of the same values.
    pub fn add_group(
        &mut self,
        values: Vec<Value>,
        count: u64,
        first: Option<Timestamp>,
        last: Option<Timestamp>,
    ) {
        let key = serde_json::to_string(&values).unwrap_or_default();
        let g = self.groups.entry(key).or_insert_with(|| Group {
            values,
            count: 0,
            first: None,
            last: None,
        });
        g.count += count;
        if let Some(t) = first
            && g.first.as_ref().is_none_or(|f| earlier(&t, f))
        {
            g.first = Some(t);
        }
        if let Some(t) = last
            && g.last.as_ref().is_none_or(|l| earlier(l, &t))
        {
            g.last = Some(t);
        }
    }

    /// The groups, largest first (ties by their values), at most `top`
    /// of them (0: all).
    pub fn groups(&self, top: usize) -> Vec<&Group> {
        let mut v: Vec<(&String, &Group)> = self.groups.iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        let n = if top == 0 { v.len() } else { top.min(v.len()) };
        v.into_iter().take(n).map(|(_, g)| g).collect()
    }

    /// The table: one column per path (headed by the path), then COUNT,
    /// FIRST and LAST in `time_format`; aligned as `-o table` is.
    pub fn write_table(
        &self,
        out: &mut dyn Write,
        top: usize,
        time_format: TimeFormat,
    ) -> io::Result<()> {
        let mut tw = TabWriter::new(2, 3);
        let mut header: Vec<String> = self.names.iter().map(|n| n.to_uppercase()).collect();
        header.extend(["COUNT".into(), "FIRST".into(), "LAST".into()]);
        tw.write_str(&format!("{}\n", header.join("\t")));
        for g in self.groups(top) {
            let mut cells: Vec<String> = g.values.iter().map(cell).collect();
            cells.push(g.count.to_string());
            cells.push(fmt_timestamp(time_format, g.first.as_ref()));
            cells.push(fmt_timestamp(time_format, g.last.as_ref()));
            tw.write_str(&format!("{}\n", cells.join("\t")));
        }
        out.write_all(tw.flush().as_bytes())
    }

    /// One JSON object per line and group: each path with its value
    /// (`null` when absent), `count`, and `first`/`last` (RFC 3339).
    pub fn write_json(&self, out: &mut dyn Write, top: usize) -> io::Result<()> {
        for g in self.groups(top) {
            // Written by hand: the keys keep the order of the paths.
            let mut line = String::from("{");
            let time = |t: &Option<Timestamp>| {
                t.as_ref().map_or(Value::Null, |t| {
                    fmt_timestamp(TimeFormat::Rfc3339Nano, Some(t)).into()
                })
            };
            let fields = self
                .names
                .iter()
                .map(String::as_str)
                .zip(g.values.iter().cloned())
                .chain([
                    ("count", Value::from(g.count)),
                    ("first", time(&g.first)),
                    ("last", time(&g.last)),
                ]);
            for (i, (k, v)) in fields.enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&Value::from(k).to_string());
                line.push(':');
                line.push_str(&v.to_string());
            }
            line.push_str("}\n");
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// A value as a table cell: strings bare, absent as empty, anything else
/// as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => crate::printer::escape_terminal(s, false).into_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proto::flow::{Endpoint, Layer4, Tcp, Verdict, layer4};

    use super::*;

    fn flow(src: &str, dst: &str, port: u32, verdict: Verdict, sec: i64) -> Flow {
        let ep = |pod: &str| {
            Some(Endpoint {
                namespace: "default".into(),
                pod_name: pod.into(),
                ..Default::default()
            })
        };
        Flow {
            time: Some(Timestamp {
                seconds: 1_714_557_600 + sec,
                nanos: 0,
            }),
            verdict: verdict as i32,
            source: ep(src),
            destination: ep(dst),
            l4: Some(Layer4 {
                protocol: Some(layer4::Protocol::Tcp(Tcp {
                    destination_port: port,
                    ..Default::default()
                })),
            }),
            ..Default::default()
        }
    }

    fn paths(p: &str) -> Vec<String> {
        p.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn counts_first_and_last_per_group() {
        let mut a = Aggregator::new(&paths(
            "source.pod_name,destination.pod_name,l4.TCP.destination_port,verdict",
        ));
        for (i, (s, d, p, v)) in [
            ("xwing", "deathstar", 80, Verdict::Dropped),
            ("tiefighter", "deathstar", 80, Verdict::Forwarded),
            ("xwing", "deathstar", 80, Verdict::Dropped),
            ("xwing", "deathstar", 443, Verdict::Dropped),
            ("xwing", "deathstar", 80, Verdict::Dropped),
            ("tiefighter", "deathstar", 80, Verdict::Forwarded),
        ]
        .into_iter()
        .enumerate()
        {
            // Out of order: first/last are by time, not arrival.
            a.add(&flow(s, d, p, v, [5, 1, 3, 2, 0, 4][i]));
        }
        let g = a.groups(0);
        let counts: Vec<u64> = g.iter().map(|g| g.count).collect();
        assert_eq!(counts, [3, 2, 1]);
        assert_eq!(
            g[0].values,
            [
                Value::from("xwing"),
                Value::from("deathstar"),
                Value::from(80),
                Value::from("DROPPED")
            ]
        );
        assert_eq!(g[0].first.unwrap().seconds, 1_714_557_600);
        assert_eq!(g[0].last.unwrap().seconds, 1_714_557_605);
        assert_eq!(a.groups(2).len(), 2);

        let mut out = Vec::new();
        a.write_table(&mut out, 2, TimeFormat::Rfc3339).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
SOURCE.POD_NAME   DESTINATION.POD_NAME   L4.TCP.DESTINATION_PORT   VERDICT     COUNT   FIRST                  LAST
xwing             deathstar              80                        DROPPED     3       2024-05-01T10:00:00Z   2024-05-01T10:00:05Z
tiefighter        deathstar              80                        FORWARDED   2       2024-05-01T10:00:01Z   2024-05-01T10:00:04Z
"
        );
        let mut out = Vec::new();
        a.write_json(&mut out, 1).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"source.pod_name\":\"xwing\",\"destination.pod_name\":\"deathstar\",\
             \"l4.TCP.destination_port\":80,\"verdict\":\"DROPPED\",\"count\":3,\
             \"first\":\"2024-05-01T10:00:00Z\",\"last\":\"2024-05-01T10:00:05Z\"}\n"
        );
    }

    #[test]
    fn absent_fields_group_together_as_empty() {
        let mut a = Aggregator::new(&paths("l4.UDP.destination_port,source.namespace"));
        a.add(&flow("a", "b", 80, Verdict::Forwarded, 0));
        a.add(&flow("c", "d", 443, Verdict::Forwarded, 0));
        a.add(&Flow::default());
        let g = a.groups(0);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].count, 2);
        assert_eq!(g[0].values, [Value::Null, Value::from("default")]);
        assert_eq!(g[1].values, [Value::Null, Value::Null]);
        assert_eq!(g[1].first, None);
        let mut out = Vec::new();
        a.write_json(&mut out, 0).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("{\"l4.UDP.destination_port\":null,\"source.namespace\":null,\"count\":1,\"first\":null,\"last\":null}\n")
        );
    }

    #[test]
    fn groups_counted_elsewhere_merge_with_equal_values() {
        let t = |s: i64| {
            Some(Timestamp {
                seconds: 1_714_557_600 + s,
                nanos: 0,
            })
        };
        let mut a = Aggregator::new(&paths("source.pod_name,verdict"));
        a.add(&flow("xwing", "deathstar", 80, Verdict::Dropped, 4));
        a.add_group(
            vec![Value::from("xwing"), Value::from("DROPPED")],
            2,
            t(1),
            t(3),
        );
        a.add_group(vec![Value::Null, Value::from("FORWARDED")], 1, t(9), t(9));
        let g = a.groups(0);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].count, g[0].first, g[0].last), (3, t(1), t(4)));
        assert_eq!(g[1].values, [Value::Null, Value::from("FORWARDED")]);
    }
}
