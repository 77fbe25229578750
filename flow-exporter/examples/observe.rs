//! A minimal Observer API client used by the demo and for quick checks until
//! the `hubble` CLI lands: prints flows in a compact one-line form or as
//! Hubble's `-o json` lines, or the server status.
//!
//! `cargo run --example observe -- --server 127.0.0.1:4245 --follow --verdict DROPPED`

use clap::Parser;
use proto::flow::{FlowFilter, Verdict};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest, get_flows_response::ResponseTypes};

#[derive(Debug, Parser)]
#[command(about = "Print flows from a Hubble Observer API server")]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:4245")]
    server: String,
    /// Follow new flows.
    #[arg(short, long)]
    follow: bool,
    /// Show the last N flows.
    #[arg(long, default_value_t = 20)]
    last: u64,
    /// Only flows with this verdict (FORWARDED, DROPPED, …); repeatable.
    #[arg(long)]
    verdict: Vec<String>,
    /// Output: compact or json.
    #[arg(short, long, default_value = "compact")]
    output: String,
    /// Print ServerStatus and exit.
    #[arg(long)]
    status: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut c = ObserverClient::connect(format!("http://{}", a.server)).await?;
    if a.status {
        let s = c.server_status(ServerStatusRequest {}).await?.into_inner();
        println!(
            "Current/Max Flows: {}/{}\nSeen flows: {}\nFlows/s: {:.2}\nVersion: {}",
            s.num_flows, s.max_flows, s.seen_flows, s.flows_rate, s.version
        );
        return Ok(());
    }
    let mut verdicts = Vec::new();
    for v in &a.verdict {
        verdicts.push(
            Verdict::from_str_name(v).ok_or_else(|| anyhow::anyhow!("invalid verdict {v:?}"))?
                as i32,
        );
    }
    let whitelist = if verdicts.is_empty() {
        vec![]
    } else {
        vec![FlowFilter {
            verdict: verdicts,
            ..Default::default()
        }]
    };
    let req = GetFlowsRequest {
        number: if a.follow { 0 } else { a.last },
        follow: a.follow,
        whitelist,
        ..Default::default()
    };
    let mut stream = c.get_flows(req).await?.into_inner();
    while let Some(r) = stream.message().await? {
        if a.output == "json" {
            println!("{}", proto::json::to_hubble_json(&r)?);
            continue;
        }
        match r.response_types {
            Some(ResponseTypes::Flow(f)) => {
                let ep = |e: &Option<proto::flow::Endpoint>, ip: &str| match e {
                    Some(e) if !e.pod_name.is_empty() => format!("{}/{}", e.namespace, e.pod_name),
                    _ => ip.to_owned(),
                };
                let (sip, dip) =
                    f.ip.as_ref()
                        .map(|i| (i.source.as_str(), i.destination.as_str()))
                        .unwrap_or(("", ""));
                let verdict = Verdict::try_from(f.verdict)
                    .map(|v| v.as_str_name())
                    .unwrap_or("?");
                let time = f.time.map(|t| t.to_rfc3339()).unwrap_or_default();
                println!(
                    "{time} {} -> {} {verdict} ({})",
                    ep(&f.source, sip),
                    ep(&f.destination, dip),
                    f.summary
                );
            }
            Some(ResponseTypes::LostEvents(l)) => println!("EVENTS LOST: {}", l.num_events_lost),
            _ => {}
        }
    }
    Ok(())
}
