//! `hubble reflect`: lists the server's gRPC services through server
//! reflection (v1, falling back to v1alpha when the server does not serve
//! v1), one per line, hiding the reflection and health services.

use std::io::Write;

use clap::ArgMatches;
use tonic_reflection::pb::{v1, v1alpha};

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::conn::Conn;
use crate::request::{Io, grpc_error};

/// Whether `hubble reflect` hides this service.
pub fn hidden(service: &str) -> bool {
    service.starts_with("grpc.reflection.") || service.starts_with("grpc.health.")
}

/// `list_v1` / `list_v1alpha`: one ListServices call over that version of
/// the reflection API (the two generated modules have the same shape but
/// distinct types).
macro_rules! list_services {
    ($name:ident, $v:ident) => {
        async fn $name(conn: &Conn) -> Result<Vec<String>, tonic::Status> {
            use $v::server_reflection_request::MessageRequest;
            use $v::server_reflection_response::MessageResponse;
            let req = $v::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut stream =
                $v::server_reflection_client::ServerReflectionClient::new(conn.channel.clone())
                    .server_reflection_info(conn.unary(futures::stream::iter([req])))
                    .await?
                    .into_inner();
            match stream.message().await?.and_then(|r| r.message_response) {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    Ok(l.service.into_iter().map(|s| s.name).collect())
                }
                Some(MessageResponse::ErrorResponse(e)) => Err(tonic::Status::new(
                    tonic::Code::from_i32(e.error_code),
                    e.error_message,
                )),
                _ => Err(tonic::Status::internal(
                    "unexpected reflection response to list services",
                )),
            }
        }
    };
}

list_services!(list_v1, v1);
list_services!(list_v1alpha, v1alpha);

/// Runs `hubble reflect`.
pub async fn run(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let conn = crate::conn::connect(&server).await?;
    let services = match list_v1(&conn).await {
        Ok(s) => s,
        Err(s) if s.code() == tonic::Code::Unimplemented => list_v1alpha(&conn)
            .await
            .map_err(|s| anyhow::anyhow!("failed to list services: {}", grpc_error(&s)))?,
        Err(s) => anyhow::bail!("failed to list services: {}", grpc_error(&s)),
    };
    let mut services: Vec<String> = services.into_iter().filter(|s| !hidden(s)).collect();
    services.sort();
    services.dedup();
    for s in services {
        writeln!(io.out, "{s}")?;
    }
    Ok(())
}
