//! Privileged, real traffic through services: a node namespace with a
//! client pod and two backend pods (as in `netns_forwarding.rs`), a ClusterIP
//! frontend with both backends, and an "external" namespace on a routed
//! link to the node for NodePort. Proves with the kernel's own TCP and UDP
//! stacks (which reject a reply from any other address than the one they
//! sent to, and any bad checksum) that the tc load balancer translates both
//! ways; that every backend is chosen; that a backend marked terminating
//! keeps its established connection and gets no new ones; and that an
//! external client reaches the service on the node's address and NodePort.
//! Everything is removed by guards, also on failure.

mod common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datapath::lb::{Backend, Frontend, LbAlgorithm, LbMaps, LbProto, ServiceFlags};
use datapath::maps::{ct_flags, ip4_key};
use datapath::netns::in_netns;
use datapath::{AttachTarget, Datapath, Endpoint, LoadOptions, Maps};

use common::{EchoServer, NetNs, Pod, Scratch, disable_ipv6, echo, mac_of, pod, sh};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const VIP_PORT: u16 = 80;
const BE_PORT: u16 = 8080;
const NODE_EXT: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const CLIENT_EXT: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const NODE_PORT: u16 = 30080;

fn frontend(vip: Ipv4Addr, port: u16, proto: LbProto, rev_nat_id: u16) -> Frontend {
    Frontend {
        vip,
        port,
        proto,
        rev_nat_id,
        flags: ServiceFlags {
            node_port: vip == NODE_EXT,
            session_affinity_s: None,
        },
        algorithm: LbAlgorithm::Random,
    }
}

/// A UDP echo server inside a namespace; stopped on drop.
struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpEcho {
    fn start(ns: PathBuf, addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).expect("open netns");
            // SAFETY: valid namespace fd; only this dedicated thread moves.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let s = UdpSocket::bind(addr).expect("bind udp");
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("udp server up");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connected UDP round trip from inside `ns`: the connected socket only
/// accepts a reply whose source is `to`.
fn udp_echo(ns: &std::path::Path, to: SocketAddr) -> Result<(), String> {
    in_netns(Some(ns), || {
        Ok((|| -> std::io::Result<()> {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(to)?;
            s.set_read_timeout(Some(Duration::from_millis(1500)))?;
            s.send(b"datagram")?;
            let mut buf = [0u8; 16];
            let n = s.recv(&mut buf)?;
            assert_eq!(&buf[..n], b"datagram");
            Ok(())
        })()
        .map_err(|e| e.to_string()))
    })
    .expect("netns switch")
}

/// Backend ids of the live service CT entries of `proto` to `vip:port`,
/// by client port.
fn chosen(maps: &Maps, vip: Ipv4Addr, port: u16, proto: u8) -> Vec<(u16, u32)> {
    maps.ct_entries()
        .unwrap()
        .into_iter()
        .filter(|(k, v)| {
            v.flags & ct_flags::SERVICE != 0
                && k.daddr == ip4_key(vip)
                && k.dport == port
                && k.proto == proto
        })
        .map(|(k, v)| (k.sport, v.backend_id))
        .collect()
}

struct Node {
    // Field order is drop order: pods and the external namespace go before
    // the node, the pins last.
    client: Pod,
    backends: [Pod; 2],
    ext: NetNs,
    node: NetNs,
    dp: Datapath,
    maps: Maps,
    lb: LbMaps,
    scratch: Scratch,
}

fn node() -> Node {
    let scratch = Scratch::new();
    let node = NetNs::new("dpsvcnode");
    disable_ipv6(&node);
    // NodePort replies are routed by the FIB from the pods' veths.
    sh(&[
        "ip",
        "netns",
        "exec",
        &node.name,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    let client = pod(&node, Ipv4Addr::new(10, 200, 1, 2), "lxc1");
    let b1 = pod(&node, Ipv4Addr::new(10, 200, 2, 2), "lxc2");
    let b2 = pod(&node, Ipv4Addr::new(10, 200, 3, 2), "lxc3");

    // The external network: a routed /24 between the node and a client.
    let ext = NetNs::new("dpsvcext");
    disable_ipv6(&ext);
    node.ip(&[
        "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", &ext.name,
    ]);
    node.ip(&["addr", "add", &format!("{NODE_EXT}/24"), "dev", "ext0"]);
    node.ip(&["link", "set", "ext0", "up"]);
    ext.ip(&["addr", "add", &format!("{CLIENT_EXT}/24"), "dev", "eth0"]);
    ext.ip(&["link", "set", "eth0", "up"]);

    let mut opts = LoadOptions::new(scratch.pin_dir());
    opts.sizes.ct4 = 1024;
    opts.sizes.events_ring_bytes = 1 << 20;
    let mut dp = Datapath::load(&opts).expect("load");
    let mut maps = dp.maps().unwrap();
    for (i, p) in [&client, &b1, &b2].into_iter().enumerate() {
        let r = dp
            .attach(&AttachTarget {
                netns: Some(node.path()),
                iface: p.host_if.clone(),
            })
            .expect("attach");
        maps.upsert_endpoint(&Endpoint {
            ip: p.ip,
            ifindex: r.ifindex,
            pod_mac: mac_of(&p.ns.name, "eth0"),
            node_mac: mac_of(&node.name, &p.host_if),
            identity: 30_000 + i as u32,
            ep_id: 1 + i as u16,
            enforce_ingress: false,
            enforce_egress: false,
            audit: false,
        })
        .unwrap();
    }
    dp.attach_netdev(&AttachTarget {
        netns: Some(node.path()),
        iface: "ext0".into(),
    })
    .expect("attach from_netdev");

    let mut lb = LbMaps::open(scratch.pin_dir()).unwrap();
    for (i, b) in [&b1, &b2].into_iter().enumerate() {
        for (proto, base) in [(LbProto::Tcp, 1), (LbProto::Udp, 11)] {
            lb.upsert_backend(
                base + i as u32,
                &Backend {
                    ip: b.ip,
                    port: BE_PORT,
                    proto,
                    terminating: false,
                },
            )
            .unwrap();
        }
    }
    lb.upsert_service(&frontend(VIP, VIP_PORT, LbProto::Tcp, 1), &[1, 2])
        .unwrap();
    lb.upsert_service(&frontend(VIP, VIP_PORT, LbProto::Udp, 1), &[11, 12])
        .unwrap();
    lb.upsert_service(&frontend(NODE_EXT, NODE_PORT, LbProto::Tcp, 2), &[1, 2])
        .unwrap();
    Node {
        client,
        backends: [b1, b2],
        ext,
        node,
        dp,
        maps,
        lb,
        scratch,
    }
}

#[test]
fn clusterip_and_nodeport_carry_real_tcp_and_udp() {
    require_privileges!();
    let mut n = node();
    let _tcp: Vec<EchoServer> = n
        .backends
        .iter()
        .map(|b| EchoServer::start(b.ns.path(), SocketAddr::from((b.ip, BE_PORT))))
        .collect();
    let _udp: Vec<UdpEcho> = n
        .backends
        .iter()
        .map(|b| UdpEcho::start(b.ns.path(), SocketAddr::from((b.ip, BE_PORT))))
        .collect();
    let vip = SocketAddr::from((VIP, VIP_PORT));

    // ClusterIP, TCP: the client's stack accepts the replies, so they come
    // from the VIP with valid checksums; both backends serve.
    for i in 0..20 {
        echo(&n.client.ns.path(), vip).unwrap_or_else(|e| panic!("TCP via the VIP, #{i}: {e}"));
    }
    let ids: BTreeSet<u32> = chosen(&n.maps, VIP, VIP_PORT, 6)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, BTreeSet::from([1, 2]), "every backend chosen");

    // ClusterIP, UDP, on a connected socket.
    for i in 0..20 {
        udp_echo(&n.client.ns.path(), vip).unwrap_or_else(|e| panic!("UDP via the VIP, #{i}: {e}"));
    }
    let ids: BTreeSet<u32> = chosen(&n.maps, VIP, VIP_PORT, 17)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, BTreeSet::from([11, 12]));

    // NodePort from the external network, to both backends.
    let np = SocketAddr::from((NODE_EXT, NODE_PORT));
    for i in 0..20 {
        echo(&n.ext.path(), np).unwrap_or_else(|e| panic!("NodePort, #{i}: {e}"));
    }
    let ids: BTreeSet<u32> = chosen(&n.maps, NODE_EXT, NODE_PORT, 6)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, BTreeSet::from([1, 2]));

    // Hairpin: the client is the only backend of another service.
    let vip2_ip = Ipv4Addr::new(10, 96, 0, 11);
    let vip2 = SocketAddr::from((vip2_ip, VIP_PORT));
    n.lb.upsert_backend(
        5,
        &Backend {
            ip: n.client.ip,
            port: BE_PORT,
            proto: LbProto::Tcp,
            terminating: false,
        },
    )
    .unwrap();
    n.lb.upsert_service(&frontend(vip2_ip, VIP_PORT, LbProto::Tcp, 3), &[5])
        .unwrap();
    {
        let _own = EchoServer::start(n.client.ns.path(), SocketAddr::from((n.client.ip, BE_PORT)));
        echo(&n.client.ns.path(), vip2).expect("a pod reaches itself through a service");
    }

    // A backend marked terminating mid-connection: the established
    // connection finishes on it, new ones all go to the other.
    let mut held = in_netns(Some(&n.client.ns.path()), || {
        Ok(TcpStream::connect_timeout(
            &vip,
            Duration::from_millis(1500),
        ))
    })
    .unwrap()
    .expect("connect");
    let port = held.local_addr().unwrap().port();
    let id = chosen(&n.maps, VIP, VIP_PORT, 6)
        .into_iter()
        .find(|(p, _)| *p == port)
        .expect("service entry of the held connection")
        .1;
    let b = n.lb.backend(id).unwrap().unwrap();
    n.lb.upsert_backend(
        id,
        &Backend {
            terminating: true,
            ..b
        },
    )
    .unwrap();
    held.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    held.write_all(b"landing request").unwrap();
    let mut buf = [0u8; 15];
    held.read_exact(&mut buf)
        .expect("the established connection finishes");
    drop(held);
    let before: BTreeSet<u16> = chosen(&n.maps, VIP, VIP_PORT, 6)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for i in 0..10 {
        echo(&n.client.ns.path(), vip).unwrap_or_else(|e| panic!("after terminating, #{i}: {e}"));
    }
    let new: Vec<u32> = chosen(&n.maps, VIP, VIP_PORT, 6)
        .into_iter()
        .filter(|(p, _)| !before.contains(p))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|&x| x != id), "{new:?} avoid {id}");

    // No backend left that may take a connection: refused by a drop.
    let other = 3 - id;
    let b = n.lb.backend(other).unwrap().unwrap();
    n.lb.upsert_backend(
        other,
        &Backend {
            terminating: true,
            ..b
        },
    )
    .unwrap();
    assert!(echo(&n.client.ns.path(), vip).is_err());
    assert!(
        n.maps
            .drop_stats()
            .unwrap()
            .iter()
            .any(|(r, s)| *r == ebpf::drop_reason::SERVICE_BACKEND_NOT_FOUND && s.packets > 0)
    );

    // The admin view of the same maps.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_datapath"))
        .args(["bpf", "lb", "list", "--pin-dir"])
        .arg(n.scratch.pin_dir())
        .output()
        .expect("run datapath bpf lb list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "10.96.0.10:80/TCP        0.0.0.0:0 (1) (0) [ClusterIP, random]",
        "10.96.0.10:80/UDP",
        "192.168.77.1:30080/TCP   0.0.0.0:0 (2) (0) [NodePort, random]",
        "10.200.2.2:8080/TCP [terminating] (1)",
        "new connections ",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let _ = (&n.dp, &n.node, &n.scratch);
}
