//! `datapath`: the node agent's loader and the admin CLI (the part-1 subset:
//! load/attach/detach and map inspection; the agent daemon comes later).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use datapath::maps::{ip4_from_key, names};
use datapath::{AttachTarget, Config, Datapath, LoadOptions, Maps, defaults, loader};

#[derive(Parser)]
#[command(
    name = "datapath",
    about = "eBPF CNI datapath: load, attach and inspect"
)]
struct Cli {
    /// The node's pin directory (on a bpffs).
    #[arg(long, global = true, env = "DATAPATH_PIN_DIR", default_value_t = format!("{}/default", defaults::BPFFS_ROOT))]
    pin_dir: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load (or re-adopt) the programs and maps and attach them to host-side veths.
    Attach {
        /// Host-side veth names.
        ifaces: Vec<String>,
        /// The node's network namespace (/run/netns/NAME); default: this one.
        #[arg(long)]
        netns: Option<PathBuf>,
        /// Trace aggregation: none, low, medium, max.
        #[arg(long, default_value = "medium")]
        aggregation: String,
    },
    /// Detach from host-side veths (removes their link pins).
    Detach {
        /// Host-side veth names.
        ifaces: Vec<String>,
    },
    /// Remove every pin of the node (links and maps).
    Unpin,
    /// Pinned links, configuration and counters.
    Status,
    /// Map inspection.
    Bpf {
        #[command(subcommand)]
        what: BpfCmd,
    },
}

#[derive(Subcommand)]
enum BpfCmd {
    /// Local endpoints.
    Endpoints,
    /// Prefix → identity.
    Ipcache,
    /// Conntrack entries.
    Ct,
    /// Policy entries of an endpoint.
    Policy {
        /// Endpoint id.
        ep_id: u16,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let pin_dir = PathBuf::from(&cli.pin_dir);
    match cli.cmd {
        Cmd::Attach {
            ifaces,
            netns,
            aggregation,
        } => {
            loader::ensure_bpffs(std::path::Path::new(defaults::BPFFS_MOUNT))
                .context("mount bpffs")?;
            let mut opts = LoadOptions::new(&pin_dir);
            opts.config = Config {
                aggregation: aggregation.parse()?,
                ..Config::default()
            };
            let mut dp = Datapath::load(&opts)
                .with_context(|| format!("load datapath into {}", pin_dir.display()))?;
            println!("maps: {:?}", dp.load_report());
            for iface in ifaces {
                let r = dp
                    .attach(&AttachTarget {
                        netns: netns.clone(),
                        iface: iface.clone(),
                    })
                    .with_context(|| format!("attach datapath to {iface}"))?;
                println!("{iface}: {r:?}");
            }
        }
        Cmd::Detach { ifaces } => {
            for iface in ifaces {
                let n = loader::detach(&pin_dir, &iface)
                    .with_context(|| format!("detach datapath from {iface}"))?;
                println!("{iface}: {n} link(s) removed");
            }
        }
        Cmd::Unpin => {
            loader::unpin_all(&pin_dir).with_context(|| format!("unpin {}", pin_dir.display()))?
        }
        Cmd::Status => {
            for l in loader::links(&pin_dir)? {
                println!(
                    "link {} {} id={} prog={} ifindex={}{}",
                    l.iface,
                    if l.ingress { "ingress" } else { "egress" },
                    l.link_id,
                    l.prog_id,
                    l.ifindex,
                    if l.ifindex == 0 { " (defunct)" } else { "" }
                );
            }
            let maps = open(&pin_dir)?;
            println!("config: {:?}", maps.config()?);
            println!("lost events: {}", maps.lost_events()?);
            println!("suppressed drop events: {}", maps.suppressed_drop_events()?);
            for (reason, s) in maps.drop_stats()? {
                println!(
                    "drops reason={reason} packets={} bytes={}",
                    s.packets, s.bytes
                );
            }
        }
        Cmd::Bpf { what } => {
            let maps = open(&pin_dir)?;
            match what {
                BpfCmd::Endpoints => {
                    for e in maps.endpoints()? {
                        println!(
                            "{:>5} {:<15} identity={} ifindex={} ingress={} egress={} audit={}",
                            e.ep_id,
                            e.ip,
                            e.identity,
                            e.ifindex,
                            enforcing(e.enforce_ingress),
                            enforcing(e.enforce_egress),
                            e.audit
                        );
                    }
                }
                BpfCmd::Ipcache => {
                    for (ip, len, v) in maps.prefixes()? {
                        println!(
                            "{ip}/{len} identity={} tunnel={}",
                            v.identity,
                            Ipv4Addr::from(v.tunnel_ep)
                        );
                    }
                }
                BpfCmd::Ct => {
                    for (k, v) in maps.ct_entries()? {
                        println!(
                            "proto={} {}:{} -> {}:{} fwd={}p/{}b rev={}p/{}b flags={:#x} ids={}->{} expires_ns={}",
                            k.proto,
                            ip4_from_key(k.saddr),
                            k.sport,
                            ip4_from_key(k.daddr),
                            k.dport,
                            v.fwd_packets,
                            v.fwd_bytes,
                            v.rev_packets,
                            v.rev_bytes,
                            v.flags,
                            v.src_identity,
                            v.dst_identity,
                            v.expires_ns
                        );
                    }
                }
                BpfCmd::Policy { ep_id } => {
                    for e in maps.policy_entries(ep_id)? {
                        println!(
                            "{:?} identity={} proto={} port={} {:?} rule={}",
                            e.direction, e.identity, e.proto, e.port, e.action, e.rule
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn enforcing(on: bool) -> &'static str {
    if on { "enforced" } else { "allow-all" }
}

fn open(pin_dir: &std::path::Path) -> Result<Maps> {
    Maps::open(pin_dir).with_context(|| {
        format!(
            "open maps in {} (is the datapath loaded? map {} missing?)",
            pin_dir.display(),
            names::ENDPOINTS
        )
    })
}
