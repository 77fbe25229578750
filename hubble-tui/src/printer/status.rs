//! `hubble status` output: the ServerStatus figures as compact lines, a
//! dict block, a table or jsonpb (upstream's `WriteServerStatusResponse`).

use std::io::{self, Write};

use proto::observer::ServerStatusResponse;

use super::{Output, TabWriter};
use crate::gotime::format_duration;

/// `2348885` → `2,348,885`.
pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Writes a ServerStatus response in the given form.
pub fn write_server_status(
    res: &ServerStatusResponse,
    output: Output,
    out: &mut impl Write,
) -> io::Result<()> {
    let na = || "N/A".to_owned();
    let connected = res
        .num_connected_nodes
        .map(|n| n.value.to_string())
        .unwrap_or_else(na);
    let unavailable = res
        .num_unavailable_nodes
        .map(|n| n.value.to_string())
        .unwrap_or_else(na);
    let mut rate = if res.flows_rate > 0.0 {
        format!("{:.2}", res.flows_rate)
    } else {
        na()
    };
    let uptime = format_duration(res.uptime_ns.min(i64::MAX as u64) as i64);
    match output {
        Output::Table => {
            let mut tw = TabWriter::default();
            tw.write_str("NUM FLOWS\tMAX FLOWS\tSEEN FLOWS\tFLOWS PER SECOND\tUPTIME\tNUM CONNECTED NODES\tNUM UNAVAILABLE NODES\tVERSION\n");
            tw.write_str(&format!(
                "{}\t{}\t{}\t{rate}\t{uptime}\t{connected}\t{unavailable}\t{}\n",
                group_thousands(res.num_flows),
                group_thousands(res.max_flows),
                group_thousands(res.seen_flows),
                res.version
            ));
            out.write_all(tw.flush().as_bytes())
        }
        Output::Dict => write!(
            out,
            "          NUM FLOWS: {}\n          MAX FLOWS: {}\n         SEEN FLOWS: {}\n   FLOWS PER SECOND: {rate}\n             UPTIME: {uptime}\nNUM CONNECTED NODES: {connected}\n NUM UNAVAIL. NODES: {unavailable}\n            VERSION: {}\n",
            group_thousands(res.num_flows),
            group_thousands(res.max_flows),
            group_thousands(res.seen_flows),
            res.version
        ),
        Output::Compact => {
            let ratio = if res.max_flows > 0 {
                format!(
                    " ({:.2}%)",
                    res.num_flows as f64 / res.max_flows as f64 * 100.0
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "Current/Max Flows: {}/{}{ratio}",
                group_thousands(res.num_flows),
                group_thousands(res.max_flows)
            )?;
            let uptime_secs = res.uptime_ns as f64 / 1e9;
            if rate == "N/A" && uptime_secs > 0.0 {
                rate = format!("{:.2}", res.seen_flows as f64 / uptime_secs);
            }
            writeln!(out, "Flows/s: {rate}")?;
            if let Some(c) = res.num_connected_nodes {
                let total = res
                    .num_unavailable_nodes
                    .map(|u| format!("/{}", u.value + c.value))
                    .unwrap_or_default();
                writeln!(out, "Connected Nodes: {}{total}", c.value)?;
            }
            if let Some(u) = res.num_unavailable_nodes
                && u.value > 0
            {
                let mut names = res.unavailable_nodes.clone();
                if names.is_empty() {
                    writeln!(out, "Unavailable Nodes: {}", u.value)?;
                } else {
                    names.sort();
                    if u.value as usize > names.len() {
                        names.push(format!("and {} more...", u.value as usize - names.len()));
                    }
                    writeln!(
                        out,
                        "Unavailable Nodes: {}\n  - {}",
                        u.value,
                        names.join("\n  - ")
                    )?;
                }
            }
            Ok(())
        }
        Output::JsonPb | Output::JsonLegacy => {
            let line = proto::json::to_hubble_json(res).map_err(io::Error::other)?;
            writeln!(out, "{line}")
        }
    }
}
