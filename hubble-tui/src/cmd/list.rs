//! `hubble list nodes|namespaces`: `GetNodes` / `GetNamespaces` as a table,
//! a wide table or indented JSON (upstream's `cmd/list`).

use std::io::Write;

use clap::ArgMatches;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetNamespacesRequest, GetNodesRequest, Namespace, Node};
use proto::relay::NodeState;
use serde::Serialize;

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::gotime::format_duration;
use crate::printer::TabWriter;
use crate::request::{Io, grpc_error};

const NA: &str = "N/A";

fn output(m: &ArgMatches) -> anyhow::Result<&str> {
    let o = m
        .get_one::<String>("output")
        .map(String::as_str)
        .unwrap_or("table");
    match o {
        "json" | "table" | "wide" => Ok(o),
        other => anyhow::bail!("unknown output format: {other}"),
    }
}

/// Go's `json.MarshalIndent(v, "", "  ")` of a slice of messages (a nil
/// slice prints `null`), HTML-escaped like Go's encoder.
pub fn json_output<T: Serialize>(items: &[T]) -> anyhow::Result<String> {
    if items.is_empty() {
        return Ok("null\n".to_owned());
    }
    let s = serde_json::to_string_pretty(items)?;
    Ok(format!("{}\n", proto::json::go_html_escape(&s)))
}

fn state_name(state: i32) -> &'static str {
    match NodeState::try_from(state) {
        Ok(NodeState::NodeConnected) => "Connected",
        Ok(NodeState::NodeUnavailable) => "Unavailable",
        Ok(NodeState::NodeGone) => "Gone",
        Ok(NodeState::NodeError) => "Error",
        _ => "Unknown",
    }
}

/// The node table (`wide` adds VERSION, ADDRESS, TLS).
pub fn node_table(nodes: &[Node], wide: bool) -> String {
    let mut tw = TabWriter::default();
    tw.write_str("NAME\tSTATUS\tAGE\tFLOWS/S\tCURRENT/MAX-FLOWS");
    if wide {
        tw.write_str("\tVERSION\tADDRESS\tTLS");
    }
    tw.write_str("\n");
    for n in nodes {
        let uptime_s = ((n.uptime_ns as f64) / 1e9).round() as i64;
        let (age, rate) = if uptime_s > 0 {
            (
                format_duration(uptime_s * 1_000_000_000),
                format!("{:.2}", n.seen_flows as f64 / uptime_s as f64),
            )
        } else {
            (NA.to_owned(), NA.to_owned())
        };
        let ratio = if n.max_flows > 0 {
            format!(
                "{}/{} ({:6.2}%)",
                n.num_flows,
                n.max_flows,
                n.num_flows as f64 / n.max_flows as f64 * 100.0
            )
        } else {
            NA.to_owned()
        };
        tw.write_str(&format!(
            "{}\t{}\t{age}\t{rate}\t{ratio}",
            n.name,
            state_name(n.state)
        ));
        if wide {
            let version = if n.version.is_empty() { NA } else { &n.version };
            let tls = match &n.tls {
                Some(t) if t.enabled => "Enabled",
                Some(_) => "Disabled",
                None => NA,
            };
            tw.write_str(&format!("\t{version}\t{}\t{tls}", n.address));
        }
        tw.write_str("\n");
    }
    tw.flush()
}

/// The namespace table (`wide` adds CLUSTER).
pub fn namespace_table(namespaces: &[Namespace], wide: bool) -> String {
    let mut tw = TabWriter::default();
    tw.write_str(if wide {
        "NAMESPACE\tCLUSTER\n"
    } else {
        "NAMESPACE\n"
    });
    for ns in namespaces {
        tw.write_str(&ns.namespace);
        if wide && !ns.cluster.is_empty() {
            tw.write_str(&format!("\t{}", ns.cluster));
        }
        tw.write_str("\n");
    }
    tw.flush()
}

/// Runs `hubble list nodes`.
pub async fn nodes(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let out = output(m)?;
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let conn = crate::conn::connect(&server).await?;
    let mut nodes = ObserverClient::new(conn.channel.clone())
        .get_nodes(conn.unary(GetNodesRequest {}))
        .await
        .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
        .into_inner()
        .nodes;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let text = match out {
        "json" => json_output(&nodes)?,
        o => node_table(&nodes, o == "wide"),
    };
    io.out.write_all(text.as_bytes())?;
    Ok(())
}

/// Runs `hubble list namespaces`.
pub async fn namespaces(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let out = output(m)?;
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let conn = crate::conn::connect(&server).await?;
    let namespaces = ObserverClient::new(conn.channel.clone())
        .get_namespaces(conn.unary(GetNamespacesRequest {}))
        .await
        .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
        .into_inner()
        .namespaces;
    let text = match out {
        "json" => json_output(&namespaces)?,
        o => namespace_table(&namespaces, o == "wide"),
    };
    io.out.write_all(text.as_bytes())?;
    Ok(())
}
