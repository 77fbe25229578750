//! Privileged, real traffic across the VXLAN overlay: two "node" network
//! namespaces joined by an underlay veth (10.231.0.1/24 ↔ 10.231.0.2/24),
//! each with the external VXLAN device from `tunnel::ensure_vxlan`, its own
//! datapath on its own private bpffs (`from_overlay` on the device, the pod
//! programs on the pod veth), one pod per node (MTU 1450 = 1500 − 50) and
//! an ipcache /32 entry for the other node's pod with `tunnel_ep` = that
//! node's underlay address. TCP (with more data than one packet) and ICMP
//! echo cross in both directions; the receiving node reports the sender's
//! identity from the VNI, not from its own ipcache (which is made to
//! disagree on purpose), and its ingress policy is enforced against it.
//! Device, link and restart behaviour are checked on their own.
//! Everything (namespaces, devices, links, pins, mounts) is removed by
//! guards, also on failure.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use aya::programs::{SchedClassifier, TcAttachType};
use datapath::netns::in_netns;
use datapath::{
    Aggregation, AttachTarget, Config, Datapath, DatapathError, Direction, Endpoint, LinkOutcome,
    LoadOptions, Maps, PolicyAction, PolicyEntry, defaults, loader, tunnel,
};
use ebpf::{RawEvent, direction, drop_reason, msg_type, trace_point};

use common::{EchoServer, Harness, NetNs, Scratch, disable_ipv6, mac_of};
use datapath::lb::{Backend, Frontend, LbAlgorithm, LbMaps, LbProto, ServiceFlags};

const GW: &str = "169.254.1.1";
const PORT: u16 = 8080;
const POD_MTU: u32 = 1500 - defaults::VXLAN_OVERHEAD;

/// One simulated node: namespace, private bpffs, loaded datapath.
struct Node {
    ns: NetNs,
    underlay_ip: Ipv4Addr,
    vxlan_ifindex: u32,
    dp: Datapath,
    maps: Maps,
    // Dropped last: unpins everything and unmounts the bpffs.
    scratch: Scratch,
}

struct Pod {
    ns: NetNs,
    ip: Ipv4Addr,
}

fn load(scratch: &Scratch, tunnel_ifindex: u32) -> Datapath {
    let mut opts = LoadOptions::new(scratch.pin_dir());
    opts.sizes.ct4 = 1024;
    opts.sizes.events_ring_bytes = 1 << 20;
    opts.config = Config {
        // Every trace, so the receive point (from-overlay) shows too.
        aggregation: Aggregation::None,
        tunnel_ifindex,
        ..Config::default()
    };
    Datapath::load(&opts).expect("load datapath")
}

/// A node namespace with the VXLAN device and the overlay attached, in the
/// order an agent follows: device, load (with its ifindex), attach_overlay.
fn node(ns: NetNs, underlay_ip: Ipv4Addr) -> Node {
    disable_ipv6(&ns);
    let scratch = Scratch::new();
    let vxlan_ifindex = tunnel::ensure_vxlan(
        Some(&ns.path()),
        defaults::VXLAN_DEVICE,
        defaults::VXLAN_PORT,
    )
    .expect("ensure_vxlan");
    let mut dp = load(&scratch, vxlan_ifindex);
    let r = dp
        .attach_overlay(&AttachTarget {
            netns: Some(ns.path()),
            iface: defaults::VXLAN_DEVICE.into(),
        })
        .expect("attach_overlay");
    assert_eq!(r.ifindex, vxlan_ifindex);
    let maps = dp.maps().unwrap();
    assert_eq!(maps.config().unwrap().tunnel_ifindex, vxlan_ifindex);
    Node {
        ns,
        underlay_ip,
        vxlan_ifindex,
        dp,
        maps,
        scratch,
    }
}

/// Two node namespaces joined by an underlay veth pair.
fn underlay() -> (NetNs, NetNs) {
    let n1 = NetNs::new("dpov1");
    let n2 = NetNs::new("dpov2");
    n1.ip(&[
        "link", "add", "ul1", "type", "veth", "peer", "name", "ul2", "netns", &n2.name,
    ]);
    n1.ip(&["addr", "add", "10.231.0.1/24", "dev", "ul1"]);
    n2.ip(&["addr", "add", "10.231.0.2/24", "dev", "ul2"]);
    n1.ip(&["link", "set", "ul1", "up"]);
    n2.ip(&["link", "set", "ul2", "up"]);
    (n1, n2)
}

/// A pod on `node` (as the CNI plugin wires it, MTU 1450 on both ends),
/// attached and registered as a local endpoint.
fn pod(node: &mut Node, ip: Ipv4Addr, host_if: &str, identity: u32, ep_id: u16) -> Pod {
    let ns = NetNs::new("dpovp");
    let mtu = POD_MTU.to_string();
    node.ns.ip(&[
        "link", "add", host_if, "mtu", &mtu, "type", "veth", "peer", "name", "eth0", "mtu", &mtu,
        "netns", &ns.name,
    ]);
    disable_ipv6(&ns);
    ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["route", "add", GW, "dev", "eth0", "scope", "link"]);
    ns.ip(&["route", "add", "default", "via", GW, "dev", "eth0"]);
    node.ns.ip(&["link", "set", host_if, "up"]);
    let r = node
        .dp
        .attach(&AttachTarget {
            netns: Some(node.ns.path()),
            iface: host_if.into(),
        })
        .expect("attach pod");
    node.maps
        .upsert_endpoint(&Endpoint {
            ip,
            ifindex: r.ifindex,
            pod_mac: mac_of(&ns.name, "eth0"),
            node_mac: mac_of(&node.ns.name, host_if),
            identity,
            ep_id,
            enforce_ingress: false,
            enforce_egress: false,
            audit: false,
        })
        .unwrap();
    Pod { ns, ip }
}

/// Connects from inside `ns`, sends `len` bytes (many full-size segments)
/// and reads them back; `Err` on timeout or mismatch.
fn echo(ns: &Path, to: SocketAddr, len: usize) -> Result<(), String> {
    in_netns(Some(ns), || {
        Ok((|| -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(1500))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut back = vec![0u8; len];
            std::thread::scope(|sc| {
                let mut w = s.try_clone()?;
                let writer = sc.spawn(move || w.write_all(&data).map(|()| data));
                s.read_exact(&mut back)?;
                let data = writer.join().expect("writer")?;
                if back != data {
                    return Err(std::io::Error::other("echoed bytes differ"));
                }
                Ok(())
            })
        })()
        .map_err(|e| e.to_string()))
    })
    .expect("netns switch")
}

/// One ICMP echo from inside `ns` to `to` over a raw socket (no `ping`
/// binary needed); `Err` when no reply comes within two seconds.
fn ping(ns: &Path, to: Ipv4Addr, seq: u16) -> Result<(), String> {
    in_netns(Some(ns), || {
        // SAFETY: plain socket(2) call; the fd is owned right below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just returned by socket(2) and is owned only here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let id: u16 = 0x4f56;
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&id.to_be_bytes());
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend_from_slice(&[0x5a; 56]);
        let sum = !req
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .fold(0u32, |a, w| {
                let s = a + w;
                (s & 0xffff) + (s >> 16)
            }) as u16;
        req[2..4].copy_from_slice(&sum.to_be_bytes());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(to.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: req and addr are valid for the sizes given.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(n, req.len() as isize, "{}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let mut buf = [0u8; 256];
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 28 {
                continue;
            }
            // A raw socket hands back the IP header too.
            let icmp = &buf[usize::from(buf[0] & 0x0f) * 4..n as usize];
            if icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes() {
                return Ok(Ok(()));
            }
        }
        Ok(Err(format!("no echo reply from {to}")))
    })
    .expect("netns switch")
}

/// Every record waiting in a node's ring, parsed.
fn events(node: &Node) -> Vec<Vec<u8>> {
    let mut ring = Harness::ring_at(&node.scratch.pin_dir());
    Harness::drain_ring(&mut ring)
}

fn traces(recs: &[Vec<u8>], point: u8) -> Vec<ebpf::TraceEvent> {
    recs.iter()
        .filter_map(|r| match ebpf::parse(r).ok()? {
            RawEvent::Trace(t, _) if t.hdr.subtype == point => Some(t),
            _ => None,
        })
        .collect()
}

fn drops(recs: &[Vec<u8>]) -> Vec<ebpf::DropEvent> {
    recs.iter()
        .filter_map(|r| match ebpf::parse(r).ok()? {
            RawEvent::Drop(d, _) => Some(d),
            _ => None,
        })
        .collect()
}

fn verdicts(recs: &[Vec<u8>]) -> Vec<ebpf::PolicyVerdictEvent> {
    recs.iter()
        .filter_map(|r| match ebpf::parse(r).ok()? {
            RawEvent::PolicyVerdict(v, _) => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn pods_on_two_nodes_talk_through_the_overlay_with_the_identity_in_the_vni() {
    require_privileges!();
    const P1_ID: u32 = 20_001;
    const P2_ID: u32 = 20_002;
    /// What node 2's ipcache claims for pod 1: wrong on purpose, so only
    /// the VNI can explain P1_ID in node 2's events.
    const P1_ID_IN_N2_IPCACHE: u32 = 29_999;
    const P1_NEW_ID: u32 = 20_007;

    let (ns1, ns2) = underlay();
    let mut n1 = node(ns1, Ipv4Addr::new(10, 231, 0, 1));
    let mut n2 = node(ns2, Ipv4Addr::new(10, 231, 0, 2));
    let p1 = pod(&mut n1, Ipv4Addr::new(10, 232, 1, 2), "lxcov1", P1_ID, 1);
    let p2 = pod(&mut n2, Ipv4Addr::new(10, 232, 2, 2), "lxcov2", P2_ID, 1);
    n1.maps
        .upsert_prefix(p2.ip, 32, P2_ID, u32::from(n2.underlay_ip))
        .unwrap();
    n2.maps
        .upsert_prefix(p1.ip, 32, P1_ID_IN_N2_IPCACHE, u32::from(n1.underlay_ip))
        .unwrap();
    events(&n1);
    events(&n2);

    // 1. TCP both ways, more than one MTU of data each, and ICMP echo.
    let s2 = EchoServer::start(p2.ns.path(), SocketAddr::from((p2.ip, PORT)));
    let s1 = EchoServer::start(p1.ns.path(), SocketAddr::from((p1.ip, PORT)));
    echo(&p1.ns.path(), SocketAddr::from((p2.ip, PORT)), 256 * 1024)
        .expect("pod 1 -> pod 2 over the overlay");
    echo(&p2.ns.path(), SocketAddr::from((p1.ip, PORT)), 256 * 1024)
        .expect("pod 2 -> pod 1 over the overlay");
    ping(&p1.ns.path(), p2.ip, 1).expect("ping pod 1 -> pod 2");
    ping(&p2.ns.path(), p1.ip, 2).expect("ping pod 2 -> pod 1");

    // Node 1 sent into the tunnel with pod 1's identity ...
    let r1 = events(&n1);
    let to_overlay = traces(&r1, trace_point::TO_OVERLAY);
    assert!(!to_overlay.is_empty(), "node 1 reports to-overlay");
    assert!(
        to_overlay
            .iter()
            .any(|t| (t.src_label, t.dst_label, t.ifindex) == (P1_ID, P2_ID, n1.vxlan_ifindex)),
        "{to_overlay:?}"
    );
    assert!(
        !traces(&r1, trace_point::FROM_OVERLAY).is_empty(),
        "replies and pod 2's connections arrive through the overlay on node 1 too"
    );
    // ... and node 2 took the source identity from the VNI, not from its
    // ipcache, on every packet from pod 1.
    let r2 = events(&n2);
    let from_overlay: Vec<_> = traces(&r2, trace_point::FROM_OVERLAY)
        .into_iter()
        .filter(|t| t.dst_label == P2_ID)
        .collect();
    assert!(!from_overlay.is_empty(), "node 2 reports from-overlay");
    for t in &from_overlay {
        assert_eq!(t.src_label, P1_ID, "identity from the VNI: {t:?}");
        assert_eq!(t.ifindex, n2.vxlan_ifindex);
        assert_eq!(t.hdr.source, 1);
    }
    assert!(
        traces(&r2, trace_point::TO_LXC)
            .iter()
            .any(|t| t.src_label == P1_ID && t.dst_label == P2_ID),
        "delivered into pod 2"
    );
    assert!(
        drops(&r1).is_empty() && drops(&r2).is_empty(),
        "no drops: {:?} {:?}",
        drops(&r1),
        drops(&r2)
    );
    let ct = n2.maps.ct_entries().unwrap();
    assert!(
        ct.iter()
            .any(|(k, v)| k.daddr == datapath::maps::ip4_key(p2.ip)
                && k.dport == PORT
                && v.src_identity == P1_ID
                && v.rev_packets > 0),
        "node 2 tracks pod 1's connection under the VNI identity, with replies: {ct:?}"
    );

    // 2. Pod 2 admits only the identity node 2's ipcache claims for pod 1,
    //    and P1_NEW_ID: pod 1 (VNI 20001) is denied, which an ipcache
    //    lookup would not have done.
    let mut ep2 = n2.maps.endpoint(p2.ip).unwrap().unwrap();
    ep2.enforce_ingress = true;
    n2.maps.upsert_endpoint(&ep2).unwrap();
    for (identity, rule) in [(P1_ID_IN_N2_IPCACHE, 1), (P1_NEW_ID, 2)] {
        n2.maps
            .upsert_policy(&PolicyEntry {
                ep_id: ep2.ep_id,
                direction: Direction::Ingress,
                identity,
                proto: 0,
                port: 0,
                port_prefix: 0,
                action: PolicyAction::Allow,
                rule,
            })
            .unwrap();
    }
    events(&n2);
    let err = echo(&p1.ns.path(), SocketAddr::from((p2.ip, PORT)), 64)
        .expect_err("pod 1's identity is denied on node 2");
    assert!(
        err.contains("timed out") || err.contains("os error 110"),
        "{err}"
    );
    let r2 = events(&n2);
    let d = drops(&r2);
    assert!(!d.is_empty(), "the SYN was dropped and reported");
    for d in &d {
        assert_eq!(d.hdr.r#type, msg_type::DROP);
        assert_eq!(d.hdr.subtype, drop_reason::POLICY_DENIED);
        assert_eq!((d.src_label, d.dst_label), (P1_ID, P2_ID));
        assert_eq!(d.direction, direction::INGRESS);
        assert_eq!(d.ifindex, n2.vxlan_ifindex);
    }
    let v = verdicts(&r2);
    assert!(
        v.iter()
            .all(|v| v.remote_label == P1_ID && v.local_label == P2_ID && v.verdict != 0),
        "{v:?}"
    );

    // 3. Pod 1 relabelled to an allowed identity: the next connection passes.
    let mut ep1 = n1.maps.endpoint(p1.ip).unwrap().unwrap();
    ep1.identity = P1_NEW_ID;
    n1.maps.upsert_endpoint(&ep1).unwrap();
    echo(&p1.ns.path(), SocketAddr::from((p2.ip, PORT)), 64 * 1024)
        .expect("the allowed identity passes");
    let r2 = events(&n2);
    assert!(
        verdicts(&r2)
            .iter()
            .any(|v| v.remote_label == P1_NEW_ID && v.verdict == 0),
        "allowed verdict for the new identity"
    );
    assert!(drops(&r2).is_empty(), "{:?}", drops(&r2));
    assert_eq!(n1.maps.lost_events().unwrap(), 0);
    assert_eq!(n2.maps.lost_events().unwrap(), 0);

    drop((s1, s2));
}

#[test]
fn services_reach_backends_on_another_node_from_pods_and_from_outside() {
    require_privileges!();
    const P1_ID: u32 = 21_001;
    const P2_ID: u32 = 21_002;
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 7, 1);
    const NODE_PORT: u16 = 30090;
    let node1_ext = Ipv4Addr::new(192, 168, 78, 1);
    let client_ext = Ipv4Addr::new(192, 168, 78, 2);

    let (ns1, ns2) = underlay();
    let mut n1 = node(ns1, Ipv4Addr::new(10, 231, 0, 1));
    let mut n2 = node(ns2, Ipv4Addr::new(10, 231, 0, 2));
    let p1 = pod(&mut n1, Ipv4Addr::new(10, 232, 1, 2), "lxcsv1", P1_ID, 1);
    let p2 = pod(&mut n2, Ipv4Addr::new(10, 232, 2, 2), "lxcsv2", P2_ID, 1);
    n1.maps
        .upsert_prefix(p2.ip, 32, P2_ID, u32::from(n2.underlay_ip))
        .unwrap();
    n2.maps
        .upsert_prefix(p1.ip, 32, P1_ID, u32::from(n1.underlay_ip))
        .unwrap();

    // An external network on node 1, with from_netdev on node 1's side.
    let ext = NetNs::new("dpovx");
    disable_ipv6(&ext);
    n1.ns.ip(&[
        "link", "add", "ext1", "type", "veth", "peer", "name", "eth0", "netns", &ext.name,
    ]);
    n1.ns
        .ip(&["addr", "add", &format!("{node1_ext}/24"), "dev", "ext1"]);
    n1.ns.ip(&["link", "set", "ext1", "up"]);
    ext.ip(&["addr", "add", &format!("{client_ext}/24"), "dev", "eth0"]);
    ext.ip(&["link", "set", "eth0", "up"]);
    common::sh(&[
        "ip",
        "netns",
        "exec",
        &n1.ns.name,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    n1.dp
        .attach_netdev(&AttachTarget {
            netns: Some(n1.ns.path()),
            iface: "ext1".into(),
        })
        .expect("attach from_netdev");

    // Node 1 knows the service; its only backend is pod 2 on node 2.
    let mut lb = LbMaps::open(n1.scratch.pin_dir()).unwrap();
    lb.upsert_backend(
        1,
        &Backend {
            ip: p2.ip,
            port: PORT,
            proto: LbProto::Tcp,
            terminating: false,
        },
    )
    .unwrap();
    let mut f = Frontend {
        vip: VIP,
        port: 80,
        proto: LbProto::Tcp,
        rev_nat_id: 1,
        flags: ServiceFlags::default(),
        algorithm: LbAlgorithm::Random,
    };
    lb.upsert_service(&f, &[1]).unwrap();
    f.vip = node1_ext;
    f.port = NODE_PORT;
    f.rev_nat_id = 2;
    f.flags.node_port = true;
    lb.upsert_service(&f, &[1]).unwrap();
    events(&n1);
    events(&n2);

    let _s2 = EchoServer::start(p2.ns.path(), SocketAddr::from((p2.ip, PORT)));
    // ClusterIP from pod 1: translated on node 1, replies reverse-translated
    // when they come back through the overlay.
    echo(&p1.ns.path(), SocketAddr::from((VIP, 80)), 256 * 1024)
        .expect("pod 1 -> ClusterIP -> pod 2 on node 2");
    // NodePort from outside: through node 1 to node 2 as world; node 2
    // returns the replies through node 1, which sends them from its address.
    echo(
        &ext.path(),
        SocketAddr::from((node1_ext, NODE_PORT)),
        64 * 1024,
    )
    .expect("external client -> node 1 NodePort -> pod 2 on node 2");

    let r2 = events(&n2);
    assert!(
        traces(&r2, trace_point::FROM_OVERLAY)
            .iter()
            .any(|t| t.src_label == datapath::maps::identity::WORLD && t.dst_label == P2_ID),
        "the external client arrives on node 2 as world"
    );
    assert!(
        traces(&r2, trace_point::TO_OVERLAY)
            .iter()
            .any(|t| t.src_label == P2_ID && t.dst_label == datapath::maps::identity::WORLD),
        "node 2 sends the replies back through the overlay"
    );
    let r1 = events(&n1);
    assert!(!traces(&r1, trace_point::TO_NETWORK).is_empty());
    assert!(drops(&r1).is_empty() && drops(&r2).is_empty());
}

/// Program ids attached at TCX ingress of `iface` inside `ns`.
fn tcx_ingress(ns: &NetNs, iface: &str) -> Vec<u32> {
    in_netns(Some(&ns.path()), || {
        let (_, progs) =
            SchedClassifier::query_tcx(iface, TcAttachType::Ingress).expect("query_tcx");
        Ok(progs.iter().map(|p| p.id()).collect())
    })
    .unwrap()
}

#[test]
fn vxlan_device_is_idempotent_and_its_link_survives_restart_and_prune() {
    require_privileges!();
    let ns = NetNs::new("dpovd");
    let scratch = Scratch::new();
    let dev = defaults::VXLAN_DEVICE;
    let path = ns.path();

    // Idempotent creation; a device of another kind or port is refused.
    let idx = tunnel::ensure_vxlan(Some(&path), dev, defaults::VXLAN_PORT).unwrap();
    assert_eq!(
        tunnel::ensure_vxlan(Some(&path), dev, defaults::VXLAN_PORT).unwrap(),
        idx
    );
    let details = common::sh_out(&["ip", "-n", &ns.name, "-d", "link", "show", dev]);
    assert!(
        details.contains("vxlan external") && details.contains("dstport 8472"),
        "{details}"
    );
    assert!(details.contains(",UP"), "set up: {details}");
    match tunnel::ensure_vxlan(Some(&path), dev, 4789) {
        Err(DatapathError::Device { message, .. }) => {
            assert!(message.contains("dstport: 8472"), "{message}")
        }
        other => panic!("another port must be refused: {other:?}"),
    }
    ns.ip(&[
        "link", "add", "notvx", "type", "veth", "peer", "name", "notvx2",
    ]);
    match tunnel::ensure_vxlan(Some(&path), "notvx", defaults::VXLAN_PORT) {
        Err(DatapathError::Device { message, .. }) => {
            assert!(message.contains("veth"), "{message}")
        }
        other => panic!("a veth must be refused: {other:?}"),
    }
    assert!(tunnel::remove_vxlan(Some(&path), "notvx").is_err());

    // Attach, then a "restart": the program is swapped into the pinned link.
    let target = AttachTarget {
        netns: Some(path.clone()),
        iface: dev.into(),
    };
    let mut dp1 = load(&scratch, 0);
    let r = dp1.attach_overlay(&target).unwrap();
    assert_eq!((r.ingress, r.ifindex), (LinkOutcome::Created, idx));
    assert_eq!(dp1.maps().unwrap().config().unwrap().tunnel_ifindex, idx);
    let id1 = dp1.overlay_program_id().unwrap();
    assert_eq!(tcx_ingress(&ns, dev), vec![id1]);
    let links = loader::links(&scratch.pin_dir()).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].program, links[0].ingress, links[0].ifindex),
        (defaults::PROG_FROM_OVERLAY, true, idx)
    );
    drop(dp1);
    assert_eq!(
        tcx_ingress(&ns, dev),
        vec![id1],
        "the pin keeps it attached"
    );

    let mut dp2 = load(&scratch, idx);
    let r = dp2.attach_overlay(&target).unwrap();
    assert_eq!(r.ingress, LinkOutcome::Replaced);
    let id2 = dp2.overlay_program_id().unwrap();
    assert_ne!(id1, id2);
    assert_eq!(tcx_ingress(&ns, dev), vec![id2], "swapped, not stacked");
    assert_eq!(loader::links(&scratch.pin_dir()).unwrap()[0].prog_id, id2);

    // A prune keeps it while the device exists ...
    assert_eq!(loader::prune_defunct_links(&scratch.pin_dir()).unwrap(), 0);
    assert_eq!(loader::links(&scratch.pin_dir()).unwrap().len(), 1);
    // ... and removes it once the device is gone.
    assert!(tunnel::remove_vxlan(Some(&path), dev).unwrap());
    assert!(!tunnel::remove_vxlan(Some(&path), dev).unwrap());
    assert_eq!(loader::links(&scratch.pin_dir()).unwrap()[0].ifindex, 0);
    assert_eq!(loader::prune_defunct_links(&scratch.pin_dir()).unwrap(), 1);

    // A re-created device gets a fresh link; detach_overlay undoes it all.
    let idx2 = tunnel::ensure_vxlan(Some(&path), dev, defaults::VXLAN_PORT).unwrap();
    let r = dp2.attach_overlay(&target).unwrap();
    assert_eq!((r.ingress, r.ifindex), (LinkOutcome::Created, idx2));
    assert!(loader::detach_overlay(&scratch.pin_dir(), dev).unwrap());
    assert!(!loader::detach_overlay(&scratch.pin_dir(), dev).unwrap());
    assert_eq!(dp2.maps().unwrap().config().unwrap().tunnel_ifindex, 0);
    // Unpinning drops the link's last reference; the kernel frees a link
    // released from bpffs in a deferred work item, so the detach is seen a
    // moment later, not at once.
    test_support::wait_for(
        "the overlay program detached",
        std::time::Duration::from_secs(5),
        || tcx_ingress(&ns, dev).is_empty(),
    );
    assert!(loader::links(&scratch.pin_dir()).unwrap().is_empty());
}
