//! `hubble status`: the gRPC health check of `hubble.server.Observer`, then
//! `ServerStatus`, printed compact (with the `Healthcheck (via …)` line),
//! as a dict, a table or JSON.

use std::io::Write;

use anyhow::Context as _;
use clap::ArgMatches;
use proto::observer::ServerStatusRequest;
use proto::observer::observer_client::ObserverClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::printer::{Output, write_server_status};
use crate::request::{Io, grpc_error};

/// The health-check service name of Hubble's observer.
const OBSERVER_SERVICE: &str = "hubble.server.Observer";

/// Runs `hubble status`.
pub async fn run(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let output = match m.get_one::<String>("output").map(String::as_str) {
        Some("compact") | None => Output::Compact,
        Some("dict") => Output::Dict,
        Some("json" | "JSON" | "jsonpb") => Output::JsonPb,
        Some("tab" | "table") => Output::Table,
        Some(other) => anyhow::bail!("invalid output format: {other}"),
    };
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let conn = crate::conn::connect(&server).await?;
    let hc = HealthClient::new(conn.channel.clone())
        .check(conn.unary(HealthCheckRequest {
            service: OBSERVER_SERVICE.to_owned(),
        }))
        .await
        .map_err(|s| anyhow::anyhow!("failed getting status: {}", grpc_error(&s)))?
        .into_inner();
    let serving = hc.status == ServingStatus::Serving as i32;
    let status = if serving {
        "Ok".to_owned()
    } else {
        let name = ServingStatus::try_from(hc.status)
            .map(|s| s.as_str_name().to_owned())
            .unwrap_or_else(|_| hc.status.to_string());
        format!("Unavailable: {name}")
    };
    if output == Output::Compact {
        writeln!(io.out, "Healthcheck (via {}): {status}", conn.target)?;
    }
    if !serving {
        anyhow::bail!("not healthy");
    }
    let ss = ObserverClient::new(conn.channel.clone())
        .server_status(conn.unary(ServerStatusRequest {}))
        .await
        .map_err(|s| anyhow::anyhow!("failed to get hubble server status: {}", grpc_error(&s)))?
        .into_inner();
    write_server_status(&ss, output, &mut io.out).context("writing the status")?;
    Ok(())
}
