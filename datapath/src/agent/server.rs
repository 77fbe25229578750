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
use crate::agent::metrics::AgentMetrics;
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

/// The route template of a request path (a bounded label value).
fn route_template(path: &str) -> &'static str {
    let mut seg = path.trim_start_matches('/').splitn(3, '/');
    let (v1, what, rest) = (seg.next(), seg.next(), seg.next());
    if v1 != Some("v1") {
        return "other";
    }
    match (what.unwrap_or(""), rest.is_some()) {
        ("healthz", false) => "/v1/healthz",
        ("status", false) => "/v1/status",
        ("ipam", false) => "/v1/ipam",
        ("ipam", true) => "/v1/ipam/{owner}",
        ("endpoints", false) => "/v1/endpoints",
        ("endpoints", true) => "/v1/endpoints/{id}",
        ("containers", true) => "/v1/containers/{cid}/{ifname}",
        ("identities", false) => "/v1/identities",
        ("policies", false) => "/v1/policies",
        ("policies", true) => "/v1/policies/{name}",
        ("services", false) => "/v1/services",
        ("services", true) => "/v1/services/{ns}/{name}",
        ("nodes", false) => "/v1/nodes",
        ("enrichment", false) => "/v1/enrichment",
        _ => "other",
    }
}

/// Times every API request into the agent's metrics (by route template).
async fn observe(
    State(m): State<Arc<AgentMetrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = route_template(req.uri().path()).to_owned();
    let method = req.method().as_str().to_owned();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    m.api_request(&path, &method, resp.status().as_u16(), start.elapsed());
    resp
}

/// Refreshes the metrics' gauges and kernel counters every
/// [`defaults::METRICS_REFRESH`], on a blocking thread.
async fn refresh_metrics(shared: Shared, metrics: Arc<AgentMetrics>) {
    let mut tick = tokio::time::interval(defaults::METRICS_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (s, m) = (shared.clone(), metrics.clone());
        let r = tokio::task::spawn_blocking(move || {
            let snapshot = {
                let a = s.lock().unwrap_or_else(|p| p.into_inner());
                a.status().and_then(|st| Ok((st, a.identities()?)))
            };
            match snapshot {
                Ok((st, ids)) => {
                    m.observe_agent(&st, &ids);
                    if let Err(e) = m.observe_kernel(&st.pin_dir) {
                        m.refresh_error("kernel");
                        tracing::warn!(target: LOG_TARGET, error = %e, "metrics: read the maps");
                    }
                }
                Err(e) => {
                    m.refresh_error("agent");
                    tracing::warn!(target: LOG_TARGET, error = %e, "metrics: agent status");
                }
            }
        })
        .await;
        if let Err(e) = r {
            tracing::error!(target: LOG_TARGET, error = %e, "metrics refresh task");
        }
    }
}

/// Serves the API on `socket` and watches the policy directory until
/// SIGTERM or SIGINT; with `metrics`, also serves the agent's Prometheus
/// metrics there (bound by the caller, so a taken port failed the start).
pub async fn serve(
    agent: Agent,
    socket: &Path,
    metrics: Option<svc::metrics::MetricsServer>,
) -> anyhow::Result<()> {
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

    let agent_metrics = Arc::new(AgentMetrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut side_tasks = vec![watcher];
    if let Some(server) = metrics {
        tracing::info!(target: LOG_TARGET, address = %server.local_addr(), "metrics listening");
        side_tasks.push(tokio::spawn(refresh_metrics(
            shared.clone(),
            agent_metrics.clone(),
        )));
        let m = agent_metrics.clone();
        let mut stop = stop_rx.clone();
        side_tasks.push(tokio::spawn(async move {
            let r = server
                .serve(move || m.encode(), async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(target: LOG_TARGET, error = %e, "metrics server");
            }
        }));
    }

    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    tracing::info!(target: LOG_TARGET, socket = %socket.display(), "agent API listening");
    let app = router(shared).layer(axum::middleware::from_fn_with_state(
        agent_metrics.clone(),
        observe,
    ));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(target: LOG_TARGET, "SIGTERM: stopping, programs stay attached"),
                _ = int.recv() => tracing::info!(target: LOG_TARGET, "SIGINT: stopping, programs stay attached"),
            }
        })
        .await
        .context("serve API");
    let _ = stop_tx.send(true);
    for t in side_tasks {
        t.abort();
    }
    drop(stop_rx);
    served
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn route_templates_are_bounded() {
        assert_eq!(route_template("/v1/endpoints"), "/v1/endpoints");
        assert_eq!(route_template("/v1/endpoints/12"), "/v1/endpoints/{id}");
        assert_eq!(
            route_template("/v1/containers/abc/eth0"),
            "/v1/containers/{cid}/{ifname}"
        );
        assert_eq!(route_template("/v1/ipam/abc/eth0"), "/v1/ipam/{owner}");
        assert_eq!(route_template("/nope"), "other");
        assert_eq!(route_template("/v1/whatever"), "other");
    }
}
