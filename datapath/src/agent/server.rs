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

/// Who may use the API socket: the file's mode and group. Reading calls
/// (GET) are open to whoever the mode lets connect; changing calls are
/// further limited by the caller's credentials ([`authorize`]).
#[derive(Clone, Debug, Default)]
pub struct SocketAccess {
    /// `None`: mode 0600, only root (the agent's user) connects. `Some(gid)`:
    /// the socket's group is `gid` and its mode 0660, so members of that group
    /// may read status, endpoints and policies; changing calls stay root's.
    pub group: Option<u32>,
}

impl SocketAccess {
    /// Access for the group named `name` (or a numeric gid), looked up in the
    /// system's group database.
    pub fn group(name: &str) -> anyhow::Result<Self> {
        let gid = match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_group(name)?,
        };
        Ok(Self { group: Some(gid) })
    }
}

/// The gid of group `name` from the system's group database (NSS:
/// `/etc/group`, and LDAP/SSSD where configured), by `getgrnam_r`.
fn lookup_group(name: &str) -> anyhow::Result<u32> {
    let not_found = || {
        anyhow::anyhow!(
            "--api-socket-group {name:?}: no such group in the system's group database (a name or a numeric gid)"
        )
    };
    let cname = std::ffi::CString::new(name).map_err(|_| not_found())?;
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers, gid 0).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf`'s length is
        // passed with it; `result` is null or points at `grp`.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            anyhow::bail!(
                "--api-socket-group {name:?}: looking the group up failed: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
        return if result.is_null() {
            Err(not_found())
        } else {
            Ok(grp.gr_gid)
        };
    }
}

/// Checks that the API socket can be created at `socket` (called at start,
/// before the datapath is touched, and again when binding): its directory
/// is created; a socket left by a killed agent is removed; a path that is
/// not a socket (a mistyped `--api-socket` naming a regular file) or a
/// socket another agent still serves is refused, and nothing is removed.
pub fn check_socket_path(socket: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::FileTypeExt as _;

    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create socket directory {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if !meta.file_type().is_socket() => anyhow::bail!(
            "--api-socket {}: the path exists and is not a socket ({}); refusing to replace it \
             (remove it yourself or choose another path)",
            socket.display(),
            describe(&meta.file_type())
        ),
        Ok(_) => {
            // A socket left by a killed agent: connectable means another agent runs.
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                anyhow::bail!("another agent is serving {}", socket.display());
            }
            std::fs::remove_file(socket)
                .with_context(|| format!("remove stale socket {}", socket.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("inspect --api-socket {}", socket.display()));
        }
    }
    Ok(())
}

/// Binds the API socket at `socket` (after [`check_socket_path`]) with
/// `access`'s mode and group.
pub fn bind_socket(
    socket: &Path,
    access: &SocketAccess,
) -> anyhow::Result<tokio::net::UnixListener> {
    use anyhow::Context as _;
    use std::os::unix::fs::PermissionsExt as _;

    check_socket_path(socket)?;
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("bind API socket {}", socket.display()))?;
    let mode = if let Some(gid) = access.group {
        std::os::unix::fs::chown(socket, None, Some(gid))
            .with_context(|| format!("set group {gid} on {}", socket.display()))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("set mode {mode:o} on {}", socket.display()))?;
    Ok(listener)
}

fn describe(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a device or other special file"
    }
}

/// The credentials of the process at the other end of an API connection
/// (`SO_PEERCRED`), taken when it connects.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// The caller's user id; `None` when the kernel did not say.
    pub uid: Option<u32>,
    /// The caller's process id, for the log.
    pub pid: Option<i32>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Self {
                uid: Some(c.uid()),
                pid: c.pid(),
            },
            Err(_) => Self {
                uid: None,
                pid: None,
            },
        }
    }
}

/// Whether a call may proceed: reading calls (GET, HEAD) always (the socket's
/// mode decides who connects); changing calls (endpoints, IPAM, policies,
/// services) only from root or the agent's own user.
pub fn authorize(method: &axum::http::Method, peer: &Peer) -> Result<(), String> {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own = unsafe { libc::geteuid() };
    match peer.uid {
        Some(0) => Ok(()),
        Some(uid) if uid == own => Ok(()),
        Some(uid) => Err(format!(
            "{method} needs root or the agent's user (uid {own}); the caller is uid {uid}"
        )),
        None => Err(format!("{method}: the caller's credentials are unknown")),
    }
}

async fn check_peer(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<Peer>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorize(req.method(), &peer) {
        Ok(()) => next.run(req).await,
        Err(msg) => {
            tracing::warn!(target: LOG_TARGET, uid = ?peer.uid, pid = ?peer.pid, path = %req.uri().path(), "refused: {msg}");
            ApiFailure(StatusCode::FORBIDDEN, msg).into_response()
        }
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

/// `router` behind the peer-credentials check, ready for `axum::serve`.
pub fn app(
    router: Router,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, Peer> {
    router
        .layer(axum::middleware::from_fn(check_peer))
        .into_make_service_with_connect_info::<Peer>()
}

/// Serves the API on `socket` (with `access`'s mode and group) and watches
/// the policy directory until SIGTERM or SIGINT; with `metrics`, also serves
/// the agent's Prometheus metrics there (bound by the caller, so a taken port
/// failed the start).
pub async fn serve(
    agent: Agent,
    socket: &Path,
    access: &SocketAccess,
    metrics: Option<svc::metrics::MetricsServer>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};

    let listener = bind_socket(socket, access)?;
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
    let api = router(shared).layer(axum::middleware::from_fn_with_state(
        agent_metrics.clone(),
        observe,
    ));
    let served = axum::serve(listener, app(api))
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
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::os::unix::process::CommandExt as _;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_path_that_is_not_a_socket_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.sock");
        std::fs::write(&file, "precious").unwrap();
        let e = check_socket_path(&file).unwrap_err().to_string();
        assert!(e.contains("is not a socket (a regular file)"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

        let sub = dir.path().join("d");
        std::fs::create_dir(&sub).unwrap();
        let e = check_socket_path(&sub).unwrap_err().to_string();
        assert!(e.contains("(a directory)"), "{e}");
        assert!(sub.is_dir());
    }

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("agent.sock");
        rt().block_on(async {
            let live = bind_socket(&path, &SocketAccess::default()).unwrap();
            let e = check_socket_path(&path).unwrap_err().to_string();
            assert!(e.contains("another agent is serving"), "{e}");
            drop(live); // the file stays behind, as after a kill -9
            assert!(path.exists());
            // A child forked by another test holds the listener until its
            // exec (a moment): only then is the socket stale everywhere.
            let mut again = bind_socket(&path, &SocketAccess::default());
            for _ in 0..100 {
                if again.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                again = bind_socket(&path, &SocketAccess::default());
            }
            again.unwrap();
        });
    }

    #[test]
    fn the_socket_is_0600_or_0660_with_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        rt().block_on(async {
            let l = bind_socket(&path, &SocketAccess::default()).unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            drop(l);
            // Another path: a test forking a child elsewhere in this process
            // holds every descriptor until its exec, so the dropped socket may
            // still accept a connect for a moment.
            let path = dir.path().join("agent-group.sock");
            let access = SocketAccess::group("65534").unwrap();
            let _l = bind_socket(&path, &access).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o660);
            assert_eq!(meta.gid(), 65534);
        });
        let e = SocketAccess::group("no-such-group-here").unwrap_err();
        assert!(e.to_string().contains("no such group"), "{e}");
        assert_eq!(SocketAccess::group("root").unwrap().group, Some(0));
        assert_eq!(SocketAccess::group("nogroup").unwrap().group, Some(65534));
    }

    #[test]
    fn changing_calls_need_root_or_the_agents_user() {
        use axum::http::Method;
        let nobody = Peer {
            uid: Some(65534),
            pid: None,
        };
        let root = Peer {
            uid: Some(0),
            pid: None,
        };
        assert!(authorize(&Method::GET, &nobody).is_ok());
        assert!(authorize(&Method::POST, &root).is_ok());
        assert!(authorize(&Method::DELETE, &root).is_ok());
        let e = authorize(&Method::POST, &nobody).unwrap_err();
        assert!(e.contains("the caller is uid 65534"), "{e}");
        let unknown = Peer {
            uid: None,
            pid: None,
        };
        assert!(authorize(&Method::DELETE, &unknown).is_err());
    }

    /// A real connection from another user: `curl` run as nobody reads and
    /// is refused a change (403 with the reason), over the socket's
    /// credentials, not a header the caller could forge.
    #[test]
    fn peer_credentials_are_checked_on_a_real_connection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("agent.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener =
            rt.block_on(async { bind_socket(&path, &SocketAccess::group("65534").unwrap()) });
        let listener = listener.unwrap();
        let router = Router::new().route(
            "/v1/thing",
            get(|| async { Json("read") }).post(|| async { Json("changed") }),
        );
        let server = rt.spawn(async move { axum::serve(listener, app(router)).await });
        let curl = |uid: u32, method: &str| {
            let out = std::process::Command::new("curl")
                .args(["-s", "-w", " %{http_code}", "-X", method, "--unix-socket"])
                .arg(&path)
                .arg("http://agent/v1/thing")
                .uid(uid)
                .gid(65534)
                .output()
                .expect("run curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(curl(65534, "GET"), "\"read\" 200");
        let refused = curl(65534, "POST");
        assert!(refused.ends_with(" 403"), "{refused}");
        assert!(refused.contains("the caller is uid 65534"), "{refused}");
        assert_eq!(curl(0, "POST"), "\"changed\" 200");
        server.abort();
    }

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
