//! `datapath-cni`: the CNI 1.0.0 plugin of the datapath (ADD, DEL, CHECK,
//! VERSION). Called by a runtime with `CNI_*` environment variables and the
//! network configuration on stdin, in the node's network namespace.
//!
//! ADD: address from the agent's IPAM, a veth pair (`lxc<hash>` on the
//! node, the other end moved into `CNI_NETNS` as `CNI_IFNAME`, IPv6 off,
//! the address as a /32, a link route to the 169.254.1.1 gateway that the
//! datapath's ARP responder answers, and a default route through it), a
//! /32 route on the node towards the pod, then the endpoint is registered
//! with the agent, which attaches the programs and computes policy. Any
//! failure undoes every step already done. DEL is idempotent. Interfaces
//! are configured with iproute2's `ip`, run inside the target namespace.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;

use datapath::api::{self, ApiError, Client, EndpointAdd, EndpointView, IpamRequest, IpamResponse};
use datapath::cni::{
    self, CniError, CniResult, NetConf, ResultDns, ResultInterface, ResultIp, ResultRoute, code,
};
use datapath::netns::in_netns;

/// The environment of one invocation.
struct Env {
    command: String,
    container_id: String,
    netns: String,
    ifname: String,
    args: BTreeMap<String, String>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn read_env() -> Result<Env, CniError> {
    let e = Env {
        command: env("CNI_COMMAND"),
        container_id: env("CNI_CONTAINERID"),
        netns: env("CNI_NETNS"),
        ifname: env("CNI_IFNAME"),
        args: cni::parse_cni_args(&env("CNI_ARGS"))?,
    };
    Ok(e)
}

fn require(e: &Env, need_netns: bool) -> Result<(), CniError> {
    for (name, v) in [
        ("CNI_CONTAINERID", &e.container_id),
        ("CNI_IFNAME", &e.ifname),
    ] {
        if v.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("{name} is required"),
                "",
            ));
        }
    }
    if need_netns && e.netns.is_empty() {
        return Err(CniError::new(
            code::INVALID_ENV,
            "CNI_NETNS is required",
            "",
        ));
    }
    if e.ifname.len() > 15 || e.ifname.contains(['/', ' ']) {
        return Err(CniError::new(
            code::INVALID_ENV,
            "invalid CNI_IFNAME",
            e.ifname.clone(),
        ));
    }
    Ok(())
}

fn main() {
    let mut version = "1.0.0".to_string();
    let r = (|| {
        let e = read_env()?;
        if e.command == "VERSION" {
            return Ok(Some(serde_json::json!({
                "cniVersion": "1.0.0",
                "supportedVersions": cni::SUPPORTED_VERSIONS,
            })));
        }
        let mut stdin = Vec::new();
        std::io::stdin().read_to_end(&mut stdin).map_err(|err| {
            CniError::new(
                code::IO_FAILURE,
                "read network configuration",
                err.to_string(),
            )
        })?;
        let conf = NetConf::parse(&stdin)?;
        version = conf.cni_version.clone();
        match e.command.as_str() {
            "ADD" => add(&e, &conf).map(|r| Some(serde_json::to_value(r).expect("result"))),
            "DEL" => del(&e, &conf).map(|()| None),
            "CHECK" => check(&e, &conf).map(|()| None),
            other => Err(CniError::new(
                code::INVALID_ENV,
                "invalid CNI_COMMAND",
                format!("{other:?}: expected ADD, DEL, CHECK or VERSION"),
            )),
        }
    })();
    match r {
        Ok(Some(v)) => println!("{v}"),
        Ok(None) => {}
        Err(mut err) => {
            err.cni_version = version;
            println!("{}", serde_json::to_string(&err).expect("error serializes"));
            eprintln!("datapath-cni: {err}");
            std::process::exit(1);
        }
    }
}

fn api_err(what: &str, e: ApiError) -> CniError {
    let c = match e {
        ApiError::Connect { .. } => code::TRY_AGAIN_LATER,
        _ => code::AGENT_ERROR,
    };
    CniError::new(c, what.to_string(), e.to_string())
}

/// Runs `ip` with `args` in the calling thread's network namespace.
fn ip(args: &[&str]) -> Result<String, CniError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| CniError::new(code::NETLINK_FAILURE, "run ip", e.to_string()))?;
    if !out.status.success() {
        return Err(CniError::new(
            code::NETLINK_FAILURE,
            format!("ip {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mac_of(iface: &str) -> Result<[u8; 6], CniError> {
    let out = ip(&["-o", "link", "show", "dev", iface])?;
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .and_then(api::parse_mac)
        .ok_or_else(|| CniError::new(code::NETLINK_FAILURE, "no MAC", format!("{iface}: {out}")))
}

fn disable_ipv6(iface: &str) {
    // IPv6 chatter (router solicitations, DAD) would only be dropped by the
    // IPv4-only datapath; best effort when IPv6 is compiled out.
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6"), "1");
}

/// Runs `f` inside the pod's network namespace.
fn in_pod<T: Send>(
    netns: &str,
    f: impl FnOnce() -> Result<T, CniError> + Send,
) -> Result<T, CniError> {
    let mut inner: Option<CniError> = None;
    let slot = &mut inner;
    let r = in_netns(Some(Path::new(netns)), move || {
        f().map_err(|e| {
            *slot = Some(e);
            datapath::DatapathError::Invalid {
                what: "pod setup",
                value: String::new(),
            }
        })
    });
    match r {
        Ok(v) => Ok(v),
        Err(_) if inner.is_some() => Err(inner.expect("checked")),
        Err(e) => Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            "enter the container's network namespace",
            e.to_string(),
        )),
    }
}

/// What ADD has done so far, undone on drop unless committed.
struct Undo<'a> {
    client: &'a Client,
    owner: String,
    host_iface: Option<String>,
    endpoint: Option<(String, String)>,
    committed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some((cid, ifname)) = &self.endpoint {
            let _ = self
                .client
                .delete::<serde_json::Value>(&format!("/v1/containers/{cid}/{ifname}"));
        }
        if let Some(h) = &self.host_iface {
            // Deleting one end of a veth deletes the pair.
            let _ = ip(&["link", "del", "dev", h]);
        }
        let _ = self
            .client
            .delete::<serde_json::Value>(&format!("/v1/ipam/{}", self.owner));
    }
}

fn add(e: &Env, conf: &NetConf) -> Result<CniResult, CniError> {
    require(e, true)?;
    if !Path::new(&e.netns).exists() {
        return Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            "the container's network namespace does not exist",
            e.netns.clone(),
        ));
    }
    let (namespace, pod_name, labels) = cni::pod_identity(&e.args, conf, &e.container_id)?;
    let ports = cni::pod_ports(&e.args)?;
    let client = Client::new(conf.socket());
    let owner = format!("{}/{}", e.container_id, e.ifname);
    let host = cni::host_iface(&e.container_id, &e.ifname);
    let tmp = cni::temp_iface(&e.container_id, &e.ifname);
    let mut undo = Undo {
        client: &client,
        owner: owner.clone(),
        host_iface: None,
        endpoint: None,
        committed: false,
    };
    let lease: IpamResponse = client
        .post("/v1/ipam", &IpamRequest { owner })
        .map_err(|err| api_err("allocate an address from the agent", err))?;

    // A leftover of an earlier, interrupted ADD for the same container.
    if link_exists(&host) {
        ip(&["link", "del", "dev", &host])?;
    }
    // The agent says what the overlay carries (underlay MTU - 50 for VXLAN).
    let mtu = cni::pod_mtu(conf.mtu, lease.mtu).map(|m| m.to_string());
    let mut args = vec!["link", "add", host.as_str()];
    if let Some(m) = &mtu {
        args.extend(["mtu", m]);
    }
    args.extend(["type", "veth", "peer", "name", tmp.as_str()]);
    if let Some(m) = &mtu {
        args.extend(["mtu", m]);
    }
    ip(&args)?;
    undo.host_iface = Some(host.clone());
    disable_ipv6(&host);
    ip(&["link", "set", "dev", &tmp, "netns", &e.netns])?;

    let addr = format!("{}/32", lease.ip);
    let gw = lease.gateway.to_string();
    // On failure the undo guard deletes the host end, which takes the pod
    // end with it wherever it is (never an interface we did not create).
    let pod_mac = in_pod(&e.netns, || {
        if link_exists(&e.ifname) {
            return Err(CniError::new(
                code::INVALID_ENV,
                "interface already exists in the container",
                e.ifname.clone(),
            ));
        }
        ip(&["link", "set", "dev", &tmp, "name", &e.ifname])?;
        disable_ipv6(&e.ifname);
        ip(&["addr", "add", &addr, "dev", &e.ifname])?;
        ip(&["link", "set", "dev", &e.ifname, "up"])?;
        ip(&["route", "add", &gw, "dev", &e.ifname, "scope", "link"])?;
        ip(&["route", "add", "default", "via", &gw, "dev", &e.ifname])?;
        mac_of(&e.ifname)
    })?;
    ip(&["link", "set", "dev", &host, "up"])?;
    ip(&["route", "replace", &addr, "dev", &host, "scope", "link"])?;
    let node_mac = mac_of(&host)?;

    undo.endpoint = Some((e.container_id.clone(), e.ifname.clone()));
    let ep: EndpointView = client
        .post(
            "/v1/endpoints",
            &EndpointAdd {
                container_id: e.container_id.clone(),
                ifname: e.ifname.clone(),
                netns: e.netns.clone(),
                host_iface: host.clone(),
                ip: lease.ip,
                pod_mac,
                node_mac,
                namespace,
                pod_name,
                labels,
                ports,
            },
        )
        .map_err(|err| api_err("register the endpoint with the agent", err))?;
    undo.committed = true;
    // CNI before 1.0.0 (0.3.x and 0.4.0) carries `version` in each IP.
    let legacy = conf.cni_version.starts_with("0.");
    Ok(CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces: vec![
            ResultInterface {
                name: host,
                mac: api::mac_string(&node_mac),
                sandbox: None,
            },
            ResultInterface {
                name: e.ifname.clone(),
                mac: api::mac_string(&pod_mac),
                sandbox: Some(e.netns.clone()),
            },
        ],
        ips: vec![ResultIp {
            version: legacy.then(|| "4".to_string()),
            address: format!("{}/32", ep.record.ip),
            gateway: Some(gw.clone()),
            interface: Some(1),
        }],
        routes: vec![ResultRoute {
            dst: "0.0.0.0/0".into(),
            gw: Some(gw),
        }],
        dns: ResultDns::default(),
    })
}

fn del(e: &Env, conf: &NetConf) -> Result<(), CniError> {
    require(e, false)?;
    // The veth first: the pod is cut off even if the agent is unreachable
    // (a restarted agent forgets endpoints whose interface is gone).
    let host = cni::host_iface(&e.container_id, &e.ifname);
    if link_exists(&host) {
        ip(&["link", "del", "dev", &host])?;
    }
    // The agent forgets the endpoint, detaches the programs and releases
    // the address (all idempotent).
    let client = Client::new(conf.socket());
    client
        .delete::<serde_json::Value>(&format!("/v1/containers/{}/{}", e.container_id, e.ifname))
        .map_err(|err| api_err("remove the endpoint from the agent", err))?;
    Ok(())
}

fn check(e: &Env, conf: &NetConf) -> Result<(), CniError> {
    require(e, true)?;
    let Some(prev) = &conf.prev_result else {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "CHECK needs prevResult",
            "",
        ));
    };
    let prev: CniResult = serde_json::from_value(prev.clone()).map_err(|err| {
        CniError::new(code::DECODE_FAILURE, "invalid prevResult", err.to_string())
    })?;
    let failed = |what: String| CniError::new(code::CHECK_FAILED, "check failed", what);
    let client = Client::new(conf.socket());
    let ep: EndpointView = client
        .get(&format!("/v1/containers/{}/{}", e.container_id, e.ifname))
        .map_err(|err| api_err("look up the endpoint in the agent", err))?;
    let want_addr = format!("{}/32", ep.record.ip);
    if !prev.ips.iter().any(|i| i.address == want_addr) {
        return Err(failed(format!(
            "agent has {want_addr}, prevResult has {:?}",
            prev.ips
        )));
    }
    let host = cni::host_iface(&e.container_id, &e.ifname);
    if !link_exists(&host) {
        return Err(failed(format!("host interface {host} is missing")));
    }
    let ifname = e.ifname.clone();
    let (mac, addrs) = in_pod(&e.netns, move || {
        Ok((
            mac_of(&ifname)?,
            ip(&["-o", "-4", "addr", "show", "dev", &ifname])?,
        ))
    })?;
    if mac != ep.record.pod_mac {
        return Err(failed(format!("{} has another MAC", e.ifname)));
    }
    if !addrs.contains(&want_addr) {
        return Err(failed(format!("{} lacks {want_addr}", e.ifname)));
    }
    Ok(())
}
