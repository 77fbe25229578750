//! The agent daemon: the API of [`crate::agent::api`] served with axum on a unix
//! socket, the policy- and services-directory watcher (which also collects endpoints
//! whose interface vanished without a CNI DEL), and graceful shutdown on SIGTERM
//! or SIGINT that leaves programs, links and maps pinned (traffic keeps
//! flowing; a restarted agent re-adopts them).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::agent::api::{EndpointAdd, IpamRequest, PolicyApply, ServiceApply};
use crate::agent::endpoints::{Agent, AgentError};
use crate::defaults;

/// The tracing target of this module's log lines: the module path it had
/// before the source was laid out by concern (`src/server.rs`), kept so logs
/// and `RUST_LOG` filters stay as they were.
const LOG_TARGET: &str = "datapath::server";

type Shared = Arc<Mutex<Agent>>;

struct ApiFailure(StatusCode, String);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<AgentError> for ApiFailure {
    fn from(e: AgentError) -> Self {
        let code = match &e {
            AgentError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AgentError::NotFound(_) => StatusCode::NOT_FOUND,
            AgentError::Exhausted(_) => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(code, e.to_string())
    }
}

/// Runs `f` on the agent on a blocking thread (map syscalls, netns switches).
async fn with_agent<T: Serialize + Send + 'static>(
    agent: Shared,
    f: impl FnOnce(&mut Agent) -> Result<T, AgentError> + Send + 'static,
) -> Result<Json<T>, ApiFailure> {
    tokio::task::spawn_blocking(move || {
        let mut a = agent.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut a)
    })
    .await
    .map_err(|e| ApiFailure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map(Json)
    .map_err(ApiFailure::from)
}

/// The API's routes.
pub fn router(agent: Shared) -> Router {
    Router::new()
        .route("/v1/healthz", get(|| async { Json("ok") }))
        .route(
            "/v1/status",
            get(|State(a): State<Shared>| with_agent(a, |a| a.status())),
        )
        .route(
            "/v1/ipam",
            post(|State(a): State<Shared>, Json(r): Json<IpamRequest>| {
                with_agent(a, move |a| a.ipam_allocate(&r.owner))
            }),
        )
        .route(
            "/v1/ipam/{*owner}",
            delete(|State(a): State<Shared>, UrlPath(owner): UrlPath<String>| {
                with_agent(a, move |a| {
                    a.ipam_release(&owner)
                        .map(|ip| serde_json::json!({ "released": ip }))
                })
            }),
        )
        .route(
            "/v1/endpoints",
            get(|State(a): State<Shared>| with_agent(a, |a| a.endpoints())).post(
                |State(a): State<Shared>, Json(r): Json<EndpointAdd>| {
                    with_agent(a, move |a| a.add_endpoint(r))
                },
            ),
        )
        .route(
            "/v1/endpoints/{id}",
            get(|State(a): State<Shared>, UrlPath(id): UrlPath<u16>| {
                with_agent(a, move |a| a.endpoint(id))
            }),
        )
        .route(
            "/v1/containers/{cid}/{ifname}",
            get(
                |State(a): State<Shared>, UrlPath((cid, ifname)): UrlPath<(String, String)>| {
                    with_agent(a, move |a| a.endpoint_by_container(&cid, &ifname))
                },
            )
            .delete(
                |State(a): State<Shared>, UrlPath((cid, ifname)): UrlPath<(String, String)>| {
                    with_agent(a, move |a| {
                        a.del_endpoint(&cid, &ifname)
                            .map(|removed| serde_json::json!({ "removed": removed }))
                    })
                },
            ),
        )
        .route(
            "/v1/identities",
            get(|State(a): State<Shared>| with_agent(a, |a| a.identities())),
        )
        .route(
            "/v1/policies",
            get(|State(a): State<Shared>| with_agent(a, |a| a.policies())).post(
                |State(a): State<Shared>, Json(r): Json<PolicyApply>| {
                    with_agent(a, move |a| {
                        a.apply_cluster_policy(&r.name, &r.yaml)
                            .map(|revision| serde_json::json!({ "revision": revision }))
                    })
                },
            ),
        )
        .route(
            "/v1/policies/{name}",
            delete(|State(a): State<Shared>, UrlPath(name): UrlPath<String>| {
                with_agent(a, move |a| {
                    a.delete_cluster_policy(&name)
                        .map(|removed| serde_json::json!({ "removed": removed }))
                })
            }),
        )
        .route(
            "/v1/services",
            get(|State(a): State<Shared>| with_agent(a, |a| Ok(a.services()))).post(
                |State(a): State<Shared>, Json(r): Json<ServiceApply>| {
                    with_agent(a, move |a| {
                        a.apply_cluster_services(&r.yaml)
                            .map(|applied| serde_json::json!({ "applied": applied }))
                    })
                },
            ),
        )
        .route(
            "/v1/services/{ns}/{name}",
            delete(
                |State(a): State<Shared>, UrlPath((ns, name)): UrlPath<(String, String)>| {
                    with_agent(a, move |a| {
                        a.delete_cluster_service(&format!("{ns}/{name}"))
                            .map(|removed| serde_json::json!({ "removed": removed }))
                    })
                },
            ),
        )
        .route(
            "/v1/nodes",
            get(|State(a): State<Shared>| with_agent(a, |a| a.nodes())),
        )
        .route(
            "/v1/enrichment",
            get(|State(a): State<Shared>| with_agent(a, |a| a.enrichment())),
        )
        .with_state(agent)
}

/// Removes the socket file when dropped.
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves the API on `socket` and watches the policy directory until
/// SIGTERM or SIGINT.
pub async fn serve(agent: Agent, socket: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};

    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create socket directory {}", dir.display()))?;
    }
    // A socket left by a killed agent: connectable means another agent runs.
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            anyhow::bail!("another agent is serving {}", socket.display());
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("remove stale socket {}", socket.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("bind API socket {}", socket.display()))?;
    let _guard = SocketGuard(socket.to_path_buf());
    let shared: Shared = Arc::new(Mutex::new(agent));

    // One loop converges the node: every POLICY_POLL it collects vanished
    // endpoints and re-reads the services and policy directories; whenever the cluster
    // store reports a change (a watch event elsewhere, a resync after an
    // outage) it re-syncs the maps at once.
    let mut changes = shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .store_changes();
    let watcher = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(defaults::POLICY_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut store_open = true;
            loop {
                let store_changed = tokio::select! {
                    _ = tick.tick() => false,
                    r = changes.changed(), if store_open => {
                        store_open = r.is_ok();
                        store_open
                    }
                };
                let s = shared.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let mut a = s.lock().unwrap_or_else(|p| p.into_inner());
                    if store_changed {
                        return a.sync().map(|()| true);
                    }
                    a.gc_endpoints()?;
                    let services = a.poll_services()?;
                    Ok(a.poll_policies()? || services)
                })
                .await;
                match r {
                    Ok(Err(e)) => tracing::error!(target: LOG_TARGET, error = %e, "converge"),
                    Err(e) => {
                        tracing::error!(target: LOG_TARGET, error = %e, "convergence task")
                    }
                    Ok(Ok(_)) => {}
                }
            }
        })
    };

    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    tracing::info!(target: LOG_TARGET, socket = %socket.display(), "agent API listening");
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(target: LOG_TARGET, "SIGTERM: stopping, programs stay attached"),
                _ = int.recv() => tracing::info!(target: LOG_TARGET, "SIGINT: stopping, programs stay attached"),
            }
        })
        .await
        .context("serve API")?;
    watcher.abort();
    Ok(())
}
