//! Every size and default of the parser, each with why.

/// IPv6 extension headers walked before giving up on finding the L4 header.
/// Real traffic rarely has more than two or three; eight matches the bounded
/// loop the datapath uses, so both sides agree on what is "too many".
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// 802.1Q/802.1ad tags skipped in front of the IP header. Two covers QinQ;
/// deeper stacks do not occur on pod veths.
pub const MAX_VLAN_TAGS: usize = 2;

/// Cluster name used when neither the endpoint nor the enrichment file names
/// one. Cilium's default cluster is called `default`.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Seed of a [`crate::Parser`]'s UUID generator when none is given; callers
/// that want distinct UUIDs across processes pass a random seed (the
/// exporter does), tests pass a fixed one.
pub const DEFAULT_UUID_SEED: u64 = 0x6875_6262_6c65_2d72;

/// Share of synthetic events that are policy drops (target; the generator's
/// scenario weights are tuned to land near it). Hubble demos show a few
/// percent of drops, which exercises `--verdict DROPPED` without drowning
/// the forwarded traffic.
pub const SYNTHETIC_DROP_SHARE: f64 = 0.05;

/// Conversations the synthetic generator keeps in flight at once, so events
/// of different connections interleave as they do on a real node.
pub const SYNTHETIC_CONCURRENT_CONVERSATIONS: usize = 8;

/// Virtual boot time (ns) of the synthetic generator's first event: one hour
/// after boot, so `ktime_ns` looks like a real `bpf_ktime_get_boot_ns()`.
pub const SYNTHETIC_KTIME_START_NS: u64 = 3_600_000_000_000;
