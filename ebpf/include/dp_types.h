/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dp_types.h - keys, values and constants of the datapath maps.
 *
 * The layout contract between the kernel programs (ebpf/bpf/lxc.bpf.c) and
 * user space (Rust mirror: ebpf crate, src/maps.rs and src/identity.rs;
 * used by the datapath crate's loader). Compiles with `clang -target bpf`
 * and with the host C compiler; the ebpf crate's layout test compiles it
 * with the host `cc` and compares every size, offset and constant with the
 * Rust mirror.
 *
 * Same rules as hubble_events.h: fixed-width types only, every padding byte
 * an explicit `pad*` field (written as zero), no implicit padding.
 * IPv4 addresses are in network byte order everywhere; ports, identities,
 * ifindexes and counters in host byte order.
 */
#ifndef DP_TYPES_H
#define DP_TYPES_H

#include <linux/types.h>

#ifndef __cplusplus
#define DP_STATIC_ASSERT _Static_assert
#else
#define DP_STATIC_ASSERT static_assert
#endif
#define DP_OFFSETOF(type, member) __builtin_offsetof(type, member)

/* ------------------------------------------------------------------------ */
/* Reserved security identities (Cilium's numbering).                         */
/* ------------------------------------------------------------------------ */
#define DP_ID_UNKNOWN 0
#define DP_ID_HOST 1
#define DP_ID_WORLD 2
#define DP_ID_UNMANAGED 3
#define DP_ID_HEALTH 4
#define DP_ID_INIT 5
#define DP_ID_REMOTE_NODE 6
#define DP_ID_KUBE_APISERVER 7
#define DP_ID_INGRESS 8
/* Cilium's dual-stack split of world. The kernel never assigns them (an
 * unknown address is DP_ID_WORLD); policies may name them, see
 * ebpf/src/identity.rs. */
#define DP_ID_WORLD_IPV4 9
#define DP_ID_WORLD_IPV6 10

/* ------------------------------------------------------------------------ */
/* Endpoints: `endpoints` HASH, IPv4 of a local pod -> where and who it is.   */
/* ------------------------------------------------------------------------ */
struct endpoint_key {
	__u32 ip4; /* pod IPv4, network byte order */
};

/* endpoint_value.flags */
#define DP_EP_F_ENFORCE_INGRESS (1 << 0) /* ingress is default-deny (a policy selects it) */
#define DP_EP_F_ENFORCE_EGRESS (1 << 1)  /* egress is default-deny */
#define DP_EP_F_AUDIT (1 << 2)           /* policy audit mode: report denials, forward anyway */

struct endpoint_value {
	__u32 ifindex;      /* host-side veth, ifindex in the node netns */
	__u8 pod_mac[6];    /* MAC of the pod's interface (eth0) */
	__u8 node_mac[6];   /* MAC of the host-side veth: the pod's gateway MAC */
	__u32 identity;     /* security identity of the pod */
	__u16 ep_id;        /* endpoint id (event `source`, policy key) */
	__u8 flags;         /* DP_EP_F_* */
	__u8 pad;           /* 0 */
};

/* ------------------------------------------------------------------------ */
/* ipcache: `ipcache` LPM_TRIE, prefix -> identity of everything not local.   */
/* ------------------------------------------------------------------------ */
struct ipcache_key {
	__u32 prefixlen; /* LPM prefix length in bits, 0..32 */
	__u32 ip4;       /* network byte order */
};

struct ipcache_value {
	__u32 identity;  /* security identity of the prefix */
	__u32 tunnel_ep; /* IPv4 of the node hosting the prefix (host order), 0 = none */
	                 /* (non-zero: reached through the overlay, dp_overlay.h) */
};

/* ------------------------------------------------------------------------ */
/* Policy: `policy` LPM_TRIE, one table for all endpoints.                    */
/*                                                                           */
/* Cilium's shape: the key is {ep_id, direction, identity, proto, dport} and */
/* an entry matches the first `prefixlen` bits of it. ep_id, direction and   */
/* identity are always matched in full (DP_POLICY_PREFIX_L3 bits); identity  */
/* 0 is the entry for any peer (an L4-only rule). An entry of exactly        */
/* DP_POLICY_PREFIX_L3 bits matches every protocol and port (an L3-only      */
/* rule); DP_POLICY_PREFIX_PROTO + n bits matches the protocol and the first */
/* n bits of the port (0 <= n <= 16): n = 0 is every port of the protocol,   */
/* n = 16 exactly `dport`, and a port range is the set of its maximal        */
/* aligned prefixes. For ICMP the "port" is the ICMP type, so type 0 alone   */
/* is {proto 1, dport 0, n = 16}. The port is big endian so that its leading */
/* bits are the trie's next bits.                                            */
/* Lookup (dp_policy.h): two lookups, for the peer's identity and for 0; the  */
/* longest match of each is its answer. Deny precedence is resolved by the   */
/* agent: an entry inside a DENY of the same identity is written as a DENY,  */
/* so the longest match is a deny whenever any deny matches. A DENY from     */
/* either lookup wins, else the more specific ALLOW/AUDIT.                   */
/* ------------------------------------------------------------------------ */
#define DP_POLICY_PREFIX_L3 64     /* ep_id, direction, pad, identity */
#define DP_POLICY_PREFIX_PROTO 80  /* ... and proto, pad2: add the port bits */
#define DP_POLICY_PREFIX_FULL 96   /* every bit: one protocol and port */

struct policy_key {
	__u32 prefixlen; /* LPM prefix length in bits of what follows, 64..96 */
	__u16 ep_id;     /* local endpoint the rule belongs to */
	__u8 direction;  /* HUBBLE_DIR_INGRESS or HUBBLE_DIR_EGRESS */
	__u8 pad;        /* 0 */
	__u32 identity;  /* peer identity (host order), 0 = any */
	__u8 proto;      /* IP protocol (when prefixlen > DP_POLICY_PREFIX_L3) */
	__u8 pad2;       /* 0 */
	__be16 dport;    /* destination port or ICMP type, NETWORK byte order */
};

/* policy_value.action */
#define DP_POLICY_ALLOW 1
#define DP_POLICY_DENY 2
#define DP_POLICY_AUDIT 3 /* a deny rule in audit mode: verdict audited, packet forwarded */

/* policy_value.flags */
#define DP_POLICY_F_L4 (1 << 0) /* the entry names a protocol (prefixlen >= DP_POLICY_PREFIX_PROTO) */

struct policy_value {
	__u8 action; /* DP_POLICY_* */
	__u8 flags;  /* DP_POLICY_F_*: the lookup does not return the key, so its shape is here */
	__u8 pad[2]; /* 0 */
	__u32 rule;  /* opaque rule cookie from the agent (which rule produced it), 0 if none */
};

/* ------------------------------------------------------------------------ */
/* Conntrack: `ct4` LRU_HASH, one entry per connection, keyed by the tuple of */
/* its first packet. A packet whose own tuple matches is ESTABLISHED (or NEW */
/* when the entry is expired), one whose reversed tuple matches is a REPLY.  */
/* ICMP echo: request = {sport = id, dport = 0}, reply = {sport = 0, dport = */
/* id}, so the reply reverses onto the request.                              */
/* ------------------------------------------------------------------------ */
struct ct_key {
	__u32 saddr; /* network order */
	__u32 daddr; /* network order */
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u8 proto;  /* IP protocol */
	__u8 pad[3]; /* 0 */
};

/* ct_value.flags */
#define DP_CT_F_SEEN_REPLY (1 << 0)  /* a reply was seen */
#define DP_CT_F_FWD_CLOSING (1 << 1) /* FIN seen in the original direction */
#define DP_CT_F_REV_CLOSING (1 << 2) /* FIN seen in the reply direction */
#define DP_CT_F_RST (1 << 3)         /* RST seen */
#define DP_CT_F_SERVICE (1 << 4)     /* a service entry {client -> VIP}: backend_id is the choice */

struct ct_value {
	__u64 created_ns;     /* bpf_ktime_get_boot_ns() at creation */
	__u64 expires_ns;     /* the entry is dead after this (boot ns) */
	__u64 fwd_packets;
	__u64 fwd_bytes;
	__u64 rev_packets;
	__u64 rev_bytes;
	__u64 fwd_report_ns;  /* last trace reported, original direction */
	__u64 rev_report_ns;  /* last trace reported, reply direction */
	__u32 src_identity;   /* identity of the originator */
	__u32 dst_identity;   /* identity of the responder */
	__u16 src_ep;         /* originator's endpoint id, 0 if not local */
	__u16 dst_ep;         /* responder's endpoint id, 0 if not local */
	__u8 fwd_flags_seen;  /* TCP flags seen, original direction (FIN=0x01 ... CWR=0x80) */
	__u8 rev_flags_seen;  /* TCP flags seen, reply direction */
	__u8 fwd_flags_reported; /* TCP flags already reported in a trace, original direction */
	__u8 rev_flags_reported; /* same, reply direction */
	__u8 flags;           /* DP_CT_F_* */
	__u8 pad;             /* 0 */
	__u16 rev_nat_id;     /* service the connection was translated for (lb4_reverse_nat), 0 = none */
	__u32 backend_id;     /* service entry (DP_CT_F_SERVICE): the chosen backend, else 0 */
	__u32 tunnel_ep;      /* node the connection came from through the overlay (host */
	                      /* order), 0 = none: replies to a peer without a route of its */
	                      /* own (an external NodePort client) go back there */
	__u32 pad2;           /* 0 */
};

/*
 * The connection's service, if any: a connection to a service VIP has two
 * entries in ct4. The service entry is keyed by the tuple as the client
 * sent it {client -> VIP:port}, flagged DP_CT_F_SERVICE, and remembers
 * backend_id (so later packets keep their backend when the backend set
 * changes). The backend entry is the ordinary entry of the translated
 * tuple {client -> backend:port}; its rev_nat_id tells the reply path to
 * restore the VIP as source. A VIP is never a real address, so the two
 * keys never collide with another connection's.
 */

/* Lifetimes, Cilium's defaults (bpf/lib/conntrack.h). */
#define DP_CT_LIFETIME_TCP_S 21600   /* established TCP */
#define DP_CT_LIFETIME_NONTCP_S 60   /* UDP, ICMP, SCTP */
#define DP_CT_SYN_TIMEOUT_S 60       /* TCP before a reply was seen */
#define DP_CT_CLOSE_TIMEOUT_S 10     /* TCP after RST or FIN both ways */

/* ------------------------------------------------------------------------ */
/* Config: `dp_config` ARRAY, one entry, writable while programs run.         */
/* ------------------------------------------------------------------------ */
#define DP_AGG_NONE 0   /* every trace */
#define DP_AGG_LOW 1    /* no traces at receive points (from-endpoint, -stack, -overlay, -network) */
#define DP_AGG_MEDIUM 2 /* low + only new connections, new TCP flags, and every report interval */
#define DP_AGG_MAX 3    /* low + only new connections and SYN/FIN/RST */

#define DP_CFG_F_SET (1 << 0) /* written by the loader; unset = built-in defaults */

#define DP_DEFAULT_AGGREGATION DP_AGG_MEDIUM
#define DP_DEFAULT_REPORT_INTERVAL_S 5    /* Cilium's MONITOR_REPORT_INTERVAL */
#define DP_DEFAULT_DROP_EVENTS_PER_S 1000 /* per CPU; 0 = unlimited */

struct dp_config {
	__u32 flags;              /* DP_CFG_F_* */
	__u8 aggregation;         /* DP_AGG_* */
	__u8 pad[3];              /* 0 */
	__u32 report_interval_s;  /* medium: re-report an active flow at most this often */
	__u32 drop_events_per_s;  /* drop-event rate limit per CPU, 0 = unlimited */
	__u32 tunnel_ifindex;     /* the node's external VXLAN device (node netns), 0 = no tunnel */
	__u32 pad2;               /* 0: size a multiple of 8 */
};

/* Per-reason drop counters: `drop_stats` PERCPU_ARRAY indexed by the drop code. */
#define DP_DROP_STATS_ENTRIES 256
struct drop_stats_value {
	__u64 packets;
	__u64 bytes;
};

/* Forward and drop counters by reason and direction, as Cilium's metricsmap:
 * `metrics` PERCPU_ARRAY indexed by DP_METRICS_INDEX(reason, direction),
 * reason 0 = forwarded, else the HUBBLE_DROP_* code; direction HUBBLE_DIR_*
 * (the same numbers as Cilium's METRIC_INGRESS/EGRESS, 0 unknown). */
#define DP_METRICS_DIRS 4
#define DP_METRICS_ENTRIES (256 * DP_METRICS_DIRS)
#define DP_METRICS_INDEX(reason, dir) (((__u32)(reason) * DP_METRICS_DIRS) + ((dir) & 3))
struct metrics_value {
	__u64 count;
	__u64 bytes;
};

/* Drop-event rate limiter state: `drop_rl` PERCPU_ARRAY, one entry. */
struct drop_rl_value {
	__u64 window_ns;  /* start of the current one-second window */
	__u64 emitted;    /* drop events emitted in the window */
	__u64 suppressed; /* drop events suppressed since load (never reset) */
};

/* ------------------------------------------------------------------------ */
/* Services (dp_lb.h): per-packet load balancing of ClusterIP (and later     */
/* NodePort) frontends to backends, Cilium's tc LB layout.                   */
/*                                                                           */
/* `lb4_services` HASH, lb4_key -> lb4_service. For one frontend             */
/* {vip, dport, proto}: slot 0 is the master entry (count, rev_nat_id,       */
/* flags, algorithm); slots 1..count hold the ids of the active backends,    */
/* slots count+1..count+qcount the terminating ones (kept for listing; they  */
/* get no new connections).                                                  */
/* `lb4_backends` HASH, backend id (u32, non-zero) -> lb4_backend.           */
/* `lb4_reverse_nat` HASH, rev_nat_id (u16, non-zero) -> lb4_reverse_nat:   */
/* the frontend replies must come from.                                      */
/* `lb4_maglev` ARRAY, rev_nat_id * DP_LB_MAGLEV_M + hash % DP_LB_MAGLEV_M   */
/* -> backend id: the Maglev lookup table of a DP_LB_ALG_MAGLEV service,     */
/* built by user space (rev_nat_id < DP_LB_MAGLEV_SERVICES).                 */
/* `lb4_affinity` LRU_HASH, lb4_affinity_key -> lb4_affinity_value:          */
/* sessionAffinity ClientIP.                                                 */
/* ------------------------------------------------------------------------ */
struct lb4_key {
	__u32 vip;          /* frontend IPv4, network order */
	__u16 dport;        /* frontend port, host order */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 scope;         /* 0 (reserved for external/internal traffic policy) */
	__u16 backend_slot; /* 0 = master entry, 1.. = backend slots */
	__u16 pad;          /* 0 */
};

/* lb4_service.flags (master entry) */
#define DP_LB_F_NODEPORT (1 << 0) /* a NodePort frontend (node IP:nodePort) */
#define DP_LB_F_AFFINITY (1 << 1) /* sessionAffinity: ClientIP */

/* lb4_service.algorithm (master entry) */
#define DP_LB_ALG_RANDOM 1 /* bpf_get_prandom_u32() % count */
#define DP_LB_ALG_MAGLEV 2 /* lb4_maglev table of the service, by 5-tuple hash */

struct lb4_service {
	__u32 backend_id;          /* slots >= 1: the backend; master: 0 */
	__u16 count;               /* master: active backends (slots 1..count) */
	__u16 qcount;              /* master: terminating backends after them */
	__u16 rev_nat_id;          /* master: lb4_reverse_nat key of the frontend, non-zero */
	__u8 flags;                /* master: DP_LB_F_* */
	__u8 algorithm;            /* master: DP_LB_ALG_* */
	__u32 affinity_timeout_s;  /* master: sessionAffinity timeout (DP_LB_F_AFFINITY) */
};

/* lb4_backend.flags */
#define DP_LB_BACKEND_F_TERMINATING (1 << 0) /* no new connections, established ones go on */

struct lb4_backend {
	__u32 ip;    /* network order */
	__u16 port;  /* host order */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 flags;  /* DP_LB_BACKEND_F_* */
};

/* lb4_reverse_nat.flags */
#define DP_LB_RNAT_F_NODEPORT (1 << 0) /* the frontend is a node address: replies */
                                       /* leave through the FIB, not the node stack */

struct lb4_reverse_nat {
	__u32 vip;   /* network order */
	__u16 port;  /* host order */
	__u8 flags;  /* DP_LB_RNAT_F_* */
	__u8 pad;    /* 0 */
};

struct lb4_affinity_key {
	__u32 client_ip;  /* network order */
	__u16 rev_nat_id; /* the service */
	__u16 pad;        /* 0 */
};

struct lb4_affinity_value {
	__u64 last_used_ns; /* bpf_ktime_get_boot_ns() of the last new connection */
	__u32 backend_id;
	__u32 pad;          /* 0 */
};

/* Maglev table size per service (prime; Maglev wants M well above 100 x
 * backends for an even spread, see ebpf crate maps.rs) and services with a
 * table (rev_nat_id below this). */
#define DP_LB_MAGLEV_M 1021
#define DP_LB_MAGLEV_SERVICES 256
/* Hairpin: a pod that reaches itself through a service would see its own
 * address as the source of the packet it receives and drop it, so the
 * source becomes this link-local address (Cilium's IPV4_LOOPBACK) and back.
 * Host order: 169.254.42.1. */
#define DP_LB_HAIRPIN_IP4 0xa9fe2a01
/* Backend slots tried when the chosen one is terminating or gone. */
#define DP_LB_MAX_PROBE 16

/* `lb4_stats` PERCPU_ARRAY of __u64, indexed by DP_LB_STAT_*. (Connections
 * refused for want of a backend are drop_stats[SERVICE_BACKEND_NOT_FOUND].) */
#define DP_LB_STAT_NEW 0     /* new connections given a backend */
#define DP_LB_STAT_DNAT 1    /* packets translated to a backend */
#define DP_LB_STAT_REV_NAT 2 /* replies translated back to the frontend */
#define DP_LB_STAT_ENTRIES 3

/* Ring buffer size default (bytes, power of two, multiple of the page size). */
#define DP_EVENTS_RING_BYTES (1 << 22)

DP_STATIC_ASSERT(sizeof(struct endpoint_key) == 4, "endpoint_key");
DP_STATIC_ASSERT(sizeof(struct endpoint_value) == 24, "endpoint_value");
DP_STATIC_ASSERT(DP_OFFSETOF(struct endpoint_value, identity) == 16, "endpoint_value.identity");
DP_STATIC_ASSERT(sizeof(struct ipcache_key) == 8, "ipcache_key");
DP_STATIC_ASSERT(sizeof(struct ipcache_value) == 8, "ipcache_value");
DP_STATIC_ASSERT(sizeof(struct policy_key) == 16, "policy_key");
DP_STATIC_ASSERT(DP_OFFSETOF(struct policy_key, dport) == 14, "policy_key.dport");
DP_STATIC_ASSERT(sizeof(struct policy_value) == 8, "policy_value");
DP_STATIC_ASSERT(sizeof(struct ct_key) == 16, "ct_key");
DP_STATIC_ASSERT(sizeof(struct ct_value) == 96, "ct_value");
DP_STATIC_ASSERT(DP_OFFSETOF(struct ct_value, src_identity) == 64, "ct_value.src_identity");
DP_STATIC_ASSERT(DP_OFFSETOF(struct ct_value, rev_nat_id) == 82, "ct_value.rev_nat_id");
DP_STATIC_ASSERT(DP_OFFSETOF(struct ct_value, backend_id) == 84, "ct_value.backend_id");
DP_STATIC_ASSERT(sizeof(struct lb4_key) == 12, "lb4_key");
DP_STATIC_ASSERT(sizeof(struct lb4_service) == 16, "lb4_service");
DP_STATIC_ASSERT(sizeof(struct lb4_backend) == 8, "lb4_backend");
DP_STATIC_ASSERT(sizeof(struct lb4_reverse_nat) == 8, "lb4_reverse_nat");
DP_STATIC_ASSERT(sizeof(struct lb4_affinity_key) == 8, "lb4_affinity_key");
DP_STATIC_ASSERT(sizeof(struct lb4_affinity_value) == 16, "lb4_affinity_value");
DP_STATIC_ASSERT(sizeof(struct dp_config) == 24, "dp_config");
DP_STATIC_ASSERT(DP_OFFSETOF(struct dp_config, tunnel_ifindex) == 16, "dp_config.tunnel_ifindex");
DP_STATIC_ASSERT(sizeof(struct drop_stats_value) == 16, "drop_stats_value");
DP_STATIC_ASSERT(sizeof(struct drop_rl_value) == 24, "drop_rl_value");
DP_STATIC_ASSERT(sizeof(struct metrics_value) == 16, "metrics_value");

#endif /* DP_TYPES_H */
