//! The node's VXLAN device of the overlay (Cilium's tunnel mode): one
//! device per node netns in external (collect_md) mode, so one device
//! reaches every other node — `from_container` sets the outer destination
//! and the VNI (= the source security identity) per packet, and
//! `from_overlay`, attached at the device's TCX ingress
//! ([`Datapath::attach_overlay`](crate::kernel::loader::Datapath::attach_overlay)),
//! reads the VNI back as the sender's identity. Its ifindex goes into
//! [`Config::tunnel_ifindex`](crate::kernel::maps::Config::tunnel_ifindex).
//! See `ebpf/include/dp_overlay.h` and notes/kernel-facts.md §3.
//!
//! The device is made with iproute2 (`ip link add NAME type vxlan external
//! dstport PORT`), run on a thread inside the node netns
//! ([`in_netns`]): the child process inherits that thread's namespace, and
//! the mount namespace (bpffs) never changes. A device of that name that
//! already exists is kept when it is an external VXLAN device on the same
//! port (an agent restart) and refused otherwise.

use std::path::Path;
use std::process::Command;

use crate::error::{DatapathError, Result};
use crate::kernel::netns::{ifindex, in_netns};

/// What `ip -d -j link show` says about an existing device.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Existing {
    /// `linkinfo.info_kind` (`vxlan`, `veth`, ...), `None` for a device
    /// without one (loopback, a physical NIC).
    kind: Option<String>,
    /// `info_data.external` of a VXLAN device.
    external: bool,
    /// `info_data.port` of a VXLAN device.
    port: Option<u16>,
}

impl Existing {
    fn is_external_vxlan(&self, dstport: u16) -> bool {
        self.kind.as_deref() == Some("vxlan") && self.external && self.port == Some(dstport)
    }

    fn describe(&self) -> String {
        match self.kind.as_deref() {
            Some("vxlan") => format!(
                "exists as a vxlan device (external: {}, dstport: {})",
                self.external,
                self.port.map_or_else(|| "?".to_string(), |p| p.to_string())
            ),
            Some(kind) => format!("exists as a {kind} device"),
            None => "exists as a device without a link kind".to_string(),
        }
    }
}

/// Creates the node's VXLAN device `name` in external mode on UDP
/// `dstport` inside `netns` (`None`: the caller's namespace) unless it
/// exists already, sets it up and returns its ifindex there.
///
/// Idempotent: an existing external VXLAN device on the same port is kept
/// (with its pinned `from_overlay` link). A device of that name with another
/// type, not in external mode or on another port is a
/// [`DatapathError::Device`] naming what it is.
pub fn ensure_vxlan(netns: Option<&Path>, name: &str, dstport: u16) -> Result<u32> {
    check_name(name)?;
    in_netns(netns, || {
        match inspect(name)? {
            Some(e) if e.is_external_vxlan(dstport) => {}
            Some(e) => return Err(wrong_device(name, &e, dstport)),
            None => {
                let port = dstport.to_string();
                let added = ip(&[
                    "link", "add", name, "type", "vxlan", "external", "dstport", &port,
                ]);
                if let Err(message) = added {
                    // Lost a race with another creator? Then what is there counts.
                    match inspect(name)? {
                        Some(e) if e.is_external_vxlan(dstport) => {}
                        Some(e) => return Err(wrong_device(name, &e, dstport)),
                        None => {
                            return Err(DatapathError::Device {
                                op: "create vxlan",
                                iface: name.to_string(),
                                message,
                            });
                        }
                    }
                }
            }
        }
        ip(&["link", "set", name, "up"]).map_err(|message| DatapathError::Device {
            op: "set up",
            iface: name.to_string(),
            message,
        })?;
        ifindex(name)
    })
}

/// Removes the node's VXLAN device `name` from `netns`; `false` if there
/// was none. Refuses (with [`DatapathError::Device`]) to remove a device of
/// that name that is not a VXLAN device in external mode. Its pinned
/// `from_overlay` link turns defunct and is unpinned by
/// [`detach_overlay`](crate::kernel::loader::detach_overlay) or the next prune.
pub fn remove_vxlan(netns: Option<&Path>, name: &str) -> Result<bool> {
    check_name(name)?;
    in_netns(netns, || {
        let Some(e) = inspect(name)? else {
            return Ok(false);
        };
        if e.kind.as_deref() != Some("vxlan") || !e.external {
            return Err(DatapathError::Device {
                op: "remove",
                iface: name.to_string(),
                message: format!("{}: not the overlay's external vxlan device", e.describe()),
            });
        }
        ip(&["link", "del", name]).map_err(|message| DatapathError::Device {
            op: "remove",
            iface: name.to_string(),
            message,
        })?;
        Ok(true)
    })
}

fn wrong_device(name: &str, e: &Existing, dstport: u16) -> DatapathError {
    DatapathError::Device {
        op: "adopt",
        iface: name.to_string(),
        message: format!(
            "{}, want an external vxlan device on dstport {dstport}",
            e.describe()
        ),
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(DatapathError::Invalid {
            what: "interface name",
            value: name.to_string(),
        })
    }
}

/// Runs `ip ARGS` in the calling thread's network namespace; `Err` carries
/// its stderr (or why it could not run).
fn ip(args: &[&str]) -> std::result::Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The device `name` in the calling thread's namespace, `None` if absent.
fn inspect(name: &str) -> Result<Option<Existing>> {
    // iproute2 fails with "Device \"x\" does not exist." for a missing one;
    // tell that apart from `ip` itself failing by checking the name first.
    if ifindex(name).is_err() {
        return Ok(None);
    }
    let json = ip(&["-d", "-j", "link", "show", "dev", name]).map_err(|message| {
        DatapathError::Device {
            op: "inspect",
            iface: name.to_string(),
            message,
        }
    })?;
    parse_link_json(&json)
        .map(Some)
        .ok_or_else(|| DatapathError::Device {
            op: "inspect",
            iface: name.to_string(),
            message: format!("unexpected `ip -d -j link show` output: {json}"),
        })
}

/// The MTU of the interface holding the IPv4 address `addr` in the calling
/// thread's network namespace (the underlay device of a node: pods get it
/// minus the encapsulation). Run it inside [`in_netns`].
pub fn mtu_of_address(addr: std::net::Ipv4Addr) -> Result<u32> {
    link_of_address(addr)?
        .and_then(|link| link.get("mtu")?.as_u64())
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| DatapathError::Device {
            op: "find the underlay device",
            iface: addr.to_string(),
            message: format!(
                "no interface holds {addr} in the node's namespace (is --node-ip right?)"
            ),
        })
}

/// The name of the interface holding the IPv4 address `addr` in the
/// calling thread's network namespace, `None` if none does (the NodePort
/// device of a node address). Run it inside [`in_netns`].
pub fn device_of_address(addr: std::net::Ipv4Addr) -> Result<Option<String>> {
    Ok(link_of_address(addr)?.and_then(|link| Some(link.get("ifname")?.as_str()?.to_string())))
}

/// The entry of `ip -j -4 addr show` that has `addr`.
fn link_of_address(addr: std::net::Ipv4Addr) -> Result<Option<serde_json::Value>> {
    let json = ip(&["-j", "-4", "addr", "show"]).map_err(|message| DatapathError::Device {
        op: "list addresses",
        iface: String::new(),
        message,
    })?;
    Ok(link_from_addr_json(&json, addr))
}

/// The entry of `ip -j -4 addr show` output `json` that has `addr`.
fn link_from_addr_json(json: &str, addr: std::net::Ipv4Addr) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let want = addr.to_string();
    v.as_array()?
        .iter()
        .find(|link| {
            link.get("addr_info")
                .and_then(|a| a.as_array())
                .is_some_and(|a| {
                    a.iter()
                        .any(|a| a.get("local").and_then(|l| l.as_str()) == Some(want.as_str()))
                })
        })
        .cloned()
}

/// Reads the few fields we need from `ip -d -j link show dev NAME`.
fn parse_link_json(json: &str) -> Option<Existing> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let link = v.as_array()?.first()?;
    let info = link.get("linkinfo");
    let kind = info
        .and_then(|i| i.get("info_kind"))
        .and_then(|k| k.as_str())
        .map(str::to_string);
    let data = info.and_then(|i| i.get("info_data"));
    let external = data
        .and_then(|d| d.get("external"))
        .and_then(|e| e.as_bool())
        .unwrap_or(false);
    let port = data
        .and_then(|d| d.get("port"))
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    Some(Existing {
        kind,
        external,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_device_holding_an_address() {
        // iproute2 6.1, `ip -j -4 addr show` (trimmed).
        let json = r#"[{"ifindex":1,"ifname":"lo","mtu":65536,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},{"ifindex":5,"ifname":"eth0","mtu":1500,"addr_info":[{"family":"inet","local":"10.99.0.2","prefixlen":24}]}]"#;
        let a = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
        let field = |addr: &str, f: &str| {
            link_from_addr_json(json, a(addr))
                .map(|l| l[f].to_string().trim_matches('"').to_string())
        };
        assert_eq!(field("10.99.0.2", "mtu").as_deref(), Some("1500"));
        assert_eq!(field("10.99.0.2", "ifname").as_deref(), Some("eth0"));
        assert_eq!(field("127.0.0.1", "mtu").as_deref(), Some("65536"));
        assert_eq!(field("10.99.0.9", "mtu"), None);
        assert_eq!(link_from_addr_json("not json", a("10.99.0.2")), None);
    }

    #[test]
    fn parses_iproute2_json_of_vxlan_and_other_devices() {
        // iproute2 6.1, `ip -d -j link show dev X` (trimmed).
        let external = r#"[{"ifindex":2,"ifname":"vx0","linkinfo":{"info_kind":"vxlan","info_data":{"external":true,"id":0,"port":8472,"learning":false}}}]"#;
        let e = parse_link_json(external).unwrap();
        assert!(e.is_external_vxlan(8472));
        assert!(!e.is_external_vxlan(4789));

        let plain = r#"[{"ifindex":3,"ifname":"vx1","linkinfo":{"info_kind":"vxlan","info_data":{"id":5,"port":4789}}}]"#;
        let e = parse_link_json(plain).unwrap();
        assert!(!e.external);
        assert!(e.describe().contains("external: false"), "{}", e.describe());

        let veth = r#"[{"ifindex":4,"ifname":"v","linkinfo":{"info_kind":"veth"}}]"#;
        let e = parse_link_json(veth).unwrap();
        assert_eq!(e.kind.as_deref(), Some("veth"));
        assert_eq!(e.describe(), "exists as a veth device");

        let lo = r#"[{"ifindex":1,"ifname":"lo"}]"#;
        assert_eq!(parse_link_json(lo).unwrap().kind, None);
        assert_eq!(parse_link_json("[]"), None);
        assert_eq!(parse_link_json("nope"), None);
    }

    #[test]
    fn rejects_names_ip_would_misread() {
        for bad in ["", "-x", "a b", "a/b", "0123456789abcdef", "a:b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("dp_vxlan").unwrap();
    }
}
