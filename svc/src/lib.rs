//! Process scaffolding shared by the stack's long-running binaries
//! (`flow-exporter`, `relay`, `flow-archiver`): logging to stderr
//! (`RUST_LOG`, default `info`), the multi-threaded tokio runtime with the
//! error printed as `NAME: cause: cause` and a failing exit code, and the
//! SIGTERM/SIGINT future every daemon stops on; [`tls`]: the one place
//! that loads TLS certificates, keys and CAs for the daemons' gRPC servers
//! and clients; and [`metrics`]: the Prometheus `/metrics` endpoint every
//! daemon serves its own registry on; [`grpc_layers`]: the tower stack
//! (stream limit, unary timeout, load shedding, request metrics) and the
//! HTTP/2 settings in front of the exporter's and the relay's gRPC APIs;
//! [`grpc_codec`]: the codec of a streaming method whose responses are
//! written as bytes encoded beforehand (the exporter's and relay's GetFlows);
//! [`defaults`] holds its sizes and timeouts.
//!
//! It depends on nothing in the workspace; it must stay free of domain code.

pub mod defaults;
pub mod grpc_codec;
pub mod grpc_layers;
pub mod metrics;
pub mod tls;

use std::future::Future;
use std::process::ExitCode;

/// Sets up logging, runs `main` on a multi-threaded runtime and turns its
/// result into the process exit code (printing the error chain to stderr).
pub fn run<Fut>(name: &str, main: impl FnOnce() -> Fut) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| defaults::LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` prints them, but
/// without repeating a cause whose text the message before it already ends
/// with (an error type that both prints its source and returns it from
/// `source()` would otherwise read `No such file or directory (os error 2):
/// No such file or directory (os error 2)`).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Resolves on the first SIGTERM or SIGINT with the signal's name; never
/// resolves if the handlers cannot be installed.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Reading {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn error_text_does_not_repeat_a_cause_already_printed() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let io_text = io.to_string();
        let e = anyhow::Error::new(Reading {
            path: "/x".into(),
            source: io,
        })
        .context("open the replay file");
        assert_eq!(
            super::error_text(&e),
            format!("open the replay file: reading /x: {io_text}")
        );
        // Causes that add something are all kept, as `{:#}` does.
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(super::error_text(&e), "outer: middle: inner");
    }
}
