//! `hubble watch peers`: one line per `peer.Peer/Notify` change,
//! `TYPE ADDRESS NAME[ (TLS.ServerName: …)]`.

use std::io::Write;

use clap::ArgMatches;
use proto::peer::peer_client::PeerClient;
use proto::peer::{ChangeNotification, ChangeNotificationType, NotifyRequest};

use crate::config::{ConfigFile, ServerOptions, Settings};
use crate::request::{Io, grpc_error};

/// One change as upstream prints it (`%-12s %s %s%s`).
pub fn format_change(c: &ChangeNotification) -> String {
    let ty = ChangeNotificationType::try_from(c.r#type)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| c.r#type.to_string());
    let tls = c
        .tls
        .as_ref()
        .map(|t| format!(" (TLS.ServerName: {})", t.server_name))
        .unwrap_or_default();
    format!("{ty:<12} {} {}{tls}\n", c.address, c.name)
}

/// Runs `hubble watch peers` until the stream ends or Ctrl-C.
pub async fn peers(m: &ArgMatches, file: &ConfigFile, io: &mut Io) -> anyhow::Result<()> {
    let server = ServerOptions::from_settings(&Settings::new(m, file))?;
    let conn = crate::conn::connect(&server).await?;
    let mut stream = PeerClient::new(conn.channel.clone())
        .notify(conn.stream(NotifyRequest {}))
        .await
        .map_err(|s| anyhow::anyhow!(grpc_error(&s)))?
        .into_inner();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            r = stream.message() => match r {
                Ok(Some(c)) => {
                    io.out.write_all(format_change(&c).as_bytes())?;
                    io.out.flush()?;
                }
                Ok(None) => return Ok(()),
                Err(s) if s.code() == tonic::Code::Cancelled => return Ok(()),
                Err(s) => anyhow::bail!(grpc_error(&s)),
            },
            _ = &mut ctrl_c => return Ok(()),
        }
    }
}
