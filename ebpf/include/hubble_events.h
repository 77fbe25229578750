/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hubble_events.h - THE datapath -> userspace event ABI.
 *
 * This header is the single definition of every record that the kernel
 * programs write into the `events` BPF ring buffer. The Rust mirror in
 * ebpf/src/lib.rs is checked against it by a test that compiles this file
 * with the host C compiler and compares every size and offset.
 *
 * Record layout in the ring buffer:
 *
 *     struct <kind>_event      (starts with struct event_hdr)
 *     __u8 packet[hdr.cap_len] (captured bytes, from the Ethernet header on,
 *                               or from the IP header on when
 *                               HUBBLE_EVENT_F_L3_PACKET is set)
 *     ... optional trailing bytes (ignored; bpf_ringbuf_reserve needs a
 *         constant size, so a record may be longer than struct + cap_len)
 *
 * Rules: fixed-width types only, no `bool`, every padding byte is an explicit
 * `pad*` field that the producer sets to zero, every struct size is a
 * multiple of 8, all multi-byte fields are in host (little-endian) byte
 * order unless stated otherwise. Any incompatible change bumps
 * HUBBLE_EVENT_VERSION.
 *
 * Compiles with `clang -target bpf` and with the host gcc/clang.
 */
#ifndef HUBBLE_EVENTS_H
#define HUBBLE_EVENTS_H

#include <linux/types.h>

#ifndef __cplusplus
#define HUBBLE_STATIC_ASSERT _Static_assert
#else
#define HUBBLE_STATIC_ASSERT static_assert
#endif

/* Compile-time offsets without depending on which `offsetof` is in scope
 * (libbpf's bpf_helpers.h defines a non-constant one). */
#define HUBBLE_OFFSETOF(type, member) __builtin_offsetof(type, member)

/* Version byte written into every event_hdr. */
#define HUBBLE_EVENT_VERSION 2 /* 2: policy rule origins in drop and policy-verdict events */

/* Maximum number of packet bytes captured after an event struct. */
#define HUBBLE_CAPTURE_MAX 128

/* ------------------------------------------------------------------------ */
/* Message types: Cilium's monitor numbering (pkg/monitor/api/types.go), so  */
/* that flow.event_type.type is right for the stock Hubble CLI.              */
/* ------------------------------------------------------------------------ */
#define HUBBLE_MSG_DROP 1           /* struct drop_event */
#define HUBBLE_MSG_DEBUG 2          /* reserved, not emitted */
#define HUBBLE_MSG_CAPTURE 3        /* reserved, not emitted */
#define HUBBLE_MSG_TRACE 4          /* struct trace_event */
#define HUBBLE_MSG_POLICY_VERDICT 5 /* struct policy_verdict_event */
#define HUBBLE_MSG_TRACE_SOCK 7     /* struct trace_sock_event (Cilium's MessageTypeTraceSock) */

/* ------------------------------------------------------------------------ */
/* Service translation points = Cilium's xlate_point (bpf/lib/trace_sock.h,  */
/* equal to the flow.SocketTranslationPoint values); event_hdr.subtype of a  */
/* trace_sock_event.                                                         */
/* ------------------------------------------------------------------------ */
#define HUBBLE_XLATE_UNKNOWN 0
#define HUBBLE_XLATE_PRE_DIRECTION_FWD 1  /* before forward translation: the frontend */
#define HUBBLE_XLATE_POST_DIRECTION_FWD 2 /* after forward translation: the backend */
#define HUBBLE_XLATE_PRE_DIRECTION_REV 3  /* before reverse translation: the backend (UDP, aggregation none) */
#define HUBBLE_XLATE_POST_DIRECTION_REV 4 /* after reverse translation: the frontend (UDP, aggregation none) */

/* L4 protocol of a trace_sock_event: Cilium's l4_protocol enum, NOT the IP
 * protocol number. */
#define HUBBLE_SOCK_L4_UNKNOWN 0
#define HUBBLE_SOCK_L4_TCP 1
#define HUBBLE_SOCK_L4_UDP 2

/* trace_sock_event.flags bits (Cilium's TraceSockNotifyFlagIPv6). */
#define HUBBLE_SOCK_F_IPV6 (1 << 0)

/* ------------------------------------------------------------------------ */
/* Trace subtypes = Cilium monitor observation points (event_hdr.subtype of */
/* a trace event). Note: these are NOT the flow.TraceObservationPoint proto */
/* values (there TO_ENDPOINT is 101); userspace maps between the two.       */
/* ------------------------------------------------------------------------ */
#define HUBBLE_TRACE_TO_LXC 0      /* to-endpoint: delivered to a pod */
#define HUBBLE_TRACE_TO_PROXY 1    /* to-proxy */
#define HUBBLE_TRACE_TO_HOST 2     /* to-host: delivered to the host stack */
#define HUBBLE_TRACE_TO_STACK 3    /* to-stack: passed up the node's stack */
#define HUBBLE_TRACE_TO_OVERLAY 4  /* to-overlay: sent into the tunnel */
#define HUBBLE_TRACE_FROM_LXC 5    /* from-endpoint: received from a pod */
#define HUBBLE_TRACE_FROM_PROXY 6  /* from-proxy */
#define HUBBLE_TRACE_FROM_HOST 7   /* from-host */
#define HUBBLE_TRACE_FROM_STACK 8  /* from-stack */
#define HUBBLE_TRACE_FROM_OVERLAY 9 /* from-overlay: received from tunnel */
#define HUBBLE_TRACE_FROM_NETWORK 10 /* from-network: native device ingress */
#define HUBBLE_TRACE_TO_NETWORK 11 /* to-network: native device egress */
#define HUBBLE_TRACE_FROM_CRYPTO 12 /* from-crypto */
#define HUBBLE_TRACE_TO_CRYPTO 13  /* to-crypto */

/* ------------------------------------------------------------------------ */
/* Drop reasons: Cilium's DROP_* codes as positive numbers (bpf/lib/        */
/* common.h uses the negated values as return codes). Values below 130 are  */
/* not drops. event_hdr.subtype of a drop event carries the code; the names */
/* follow the flow.DropReason proto enum.                                    */
/* ------------------------------------------------------------------------ */
#define HUBBLE_DROP_INVALID_SOURCE_IP 132
#define HUBBLE_DROP_POLICY_DENIED 133           /* no allow rule matched */
#define HUBBLE_DROP_INVALID_PACKET 134          /* malformed packet */
#define HUBBLE_DROP_CT_TRUNCATED_OR_INVALID_HEADER 135
#define HUBBLE_DROP_CT_MISSING_TCP_ACK_FLAG 136 /* "Fragmentation needed" in recent Cilium */
#define HUBBLE_DROP_CT_UNKNOWN_L4_PROTOCOL 137
#define HUBBLE_DROP_UNSUPPORTED_L3_PROTOCOL 139
#define HUBBLE_DROP_MISSED_TAIL_CALL 140
#define HUBBLE_DROP_ERROR_WRITING_TO_PACKET 141
#define HUBBLE_DROP_UNKNOWN_L4_PROTOCOL 142
#define HUBBLE_DROP_UNKNOWN_ICMPV4_CODE 143
#define HUBBLE_DROP_UNKNOWN_ICMPV4_TYPE 144
#define HUBBLE_DROP_UNKNOWN_ICMPV6_CODE 145
#define HUBBLE_DROP_UNKNOWN_ICMPV6_TYPE 146
#define HUBBLE_DROP_ERROR_RETRIEVING_TUNNEL_KEY 147
#define HUBBLE_DROP_UNKNOWN_L3_TARGET_ADDRESS 150
#define HUBBLE_DROP_STALE_OR_UNROUTABLE_IP 151
#define HUBBLE_DROP_ERROR_WHILE_CORRECTING_L3_CHECKSUM 153
#define HUBBLE_DROP_ERROR_WHILE_CORRECTING_L4_CHECKSUM 154
#define HUBBLE_DROP_CT_MAP_INSERTION_FAILED 155
#define HUBBLE_DROP_INVALID_IPV6_EXTENSION_HEADER 156
#define HUBBLE_DROP_IP_FRAGMENTATION_NOT_SUPPORTED 157
#define HUBBLE_DROP_SERVICE_BACKEND_NOT_FOUND 158
#define HUBBLE_DROP_NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT 160
#define HUBBLE_DROP_UNKNOWN_CONNECTION_TRACKING_STATE 163
#define HUBBLE_DROP_LOCAL_HOST_IS_UNREACHABLE 164
#define HUBBLE_DROP_UNSUPPORTED_L2_PROTOCOL 166
#define HUBBLE_DROP_NO_MAPPING_FOR_NAT_MASQUERADE 167
#define HUBBLE_DROP_FIB_LOOKUP_FAILED 169
#define HUBBLE_DROP_INVALID_IDENTITY 171        /* identity lookup failed */
#define HUBBLE_DROP_UNKNOWN_SENDER 172
#define HUBBLE_DROP_IS_A_CLUSTERIP 174
#define HUBBLE_DROP_FORBIDDEN_ICMPV6_MESSAGE 176
#define HUBBLE_DROP_DENIED_BY_LB_SRC_RANGE_CHECK 177
#define HUBBLE_DROP_POLICY_DENY 181             /* an explicit deny rule matched */
#define HUBBLE_DROP_VLAN_FILTERED 182
#define HUBBLE_DROP_AUTH_REQUIRED 189
#define HUBBLE_DROP_NO_EGRESS_GATEWAY 194
#define HUBBLE_DROP_UNENCRYPTED_TRAFFIC 195
#define HUBBLE_DROP_TTL_EXCEEDED 196
#define HUBBLE_DROP_RATE_LIMITED 198            /* drop-event rate limit hit */
#define HUBBLE_DROP_HOST_NOT_READY 202
#define HUBBLE_DROP_EP_NOT_READY 203

/* ------------------------------------------------------------------------ */
/* Trace reasons = connection-tracking state of the packet (flow.TraceReason */
/* values). Carried in trace_event.reason, drop_event.ct_state and           */
/* policy_verdict_event.reason.                                              */
/* ------------------------------------------------------------------------ */
#define HUBBLE_CT_UNKNOWN 0
#define HUBBLE_CT_NEW 1         /* first packet of a connection */
#define HUBBLE_CT_ESTABLISHED 2 /* original direction, entry exists */
#define HUBBLE_CT_REPLY 3       /* reply direction */
#define HUBBLE_CT_RELATED 4     /* e.g. ICMP error for a known connection */

/* Policy match types (flow.policy_match_type). */
#define HUBBLE_POLICY_MATCH_NONE 0
#define HUBBLE_POLICY_MATCH_L3_ONLY 1
#define HUBBLE_POLICY_MATCH_L3_L4 2
#define HUBBLE_POLICY_MATCH_L4_ONLY 3
#define HUBBLE_POLICY_MATCH_ALL 4

/* Traffic directions (flow.TrafficDirection values). */
#define HUBBLE_DIR_UNKNOWN 0
#define HUBBLE_DIR_INGRESS 1
#define HUBBLE_DIR_EGRESS 2

/* event_hdr.flags bits. Unknown bits must be ignored by readers. */
#define HUBBLE_EVENT_F_L3_PACKET (1 << 0) /* captured bytes start at the IP header */

/* drop_event.file: datapath source file ids (flow.file.name). 0 = unknown. */
#define HUBBLE_SRC_FILE_UNKNOWN 0
#define HUBBLE_SRC_FILE_TEST_EMIT 1 /* bpf/test_emit.bpf.c */
#define HUBBLE_SRC_FILE_LXC 2       /* bpf/lxc.bpf.c */

/* ------------------------------------------------------------------------ */
/* Common header: every event starts with it. 24 bytes.                      */
/* ------------------------------------------------------------------------ */
struct event_hdr {
	__u8 type;      /* HUBBLE_MSG_* */
	__u8 subtype;   /* trace: HUBBLE_TRACE_*; drop: HUBBLE_DROP_* code; policy verdict: 0 */
	__u8 version;   /* HUBBLE_EVENT_VERSION */
	__u8 flags;     /* HUBBLE_EVENT_F_* bits, 0 if none */
	__u16 source;   /* endpoint id of the endpoint the event is about, 0 if none */
	__u16 cap_len;  /* captured packet bytes following the kind struct, <= HUBBLE_CAPTURE_MAX */
	__u32 hash;     /* skb hash (bpf_get_hash_recalc), 0 if not computed */
	__u32 orig_len; /* original packet length (skb->len) */
	__u64 ktime_ns; /* bpf_ktime_get_boot_ns() at emission; userspace converts to wall time */
};

/* Forwarding trace (HUBBLE_MSG_TRACE). 40 bytes + packet. */
struct trace_event {
	struct event_hdr hdr;
	__u32 src_label; /* security identity of the source */
	__u32 dst_label; /* security identity of the destination, 0 if unknown */
	__u16 dst_id;    /* destination endpoint id, 0 if not a local endpoint */
	__u8 reason;     /* HUBBLE_CT_* state of the packet */
	__u8 pad;        /* padding, 0 */
	__u32 ifindex;   /* interface the packet is observed on / sent to, 0 if unknown */
};

/* Packet drop (HUBBLE_MSG_DROP); the reason code is hdr.subtype. 48 bytes + packet. */
struct drop_event {
	struct event_hdr hdr;
	__u32 src_label; /* security identity of the source */
	__u32 dst_label; /* security identity of the destination, 0 if unknown */
	__u16 dst_id;    /* destination endpoint id, 0 if not a local endpoint */
	__u16 line;      /* source line of the drop in the datapath, 0 if unknown */
	__u8 file;       /* HUBBLE_SRC_FILE_* id of the datapath source file */
	__u8 ct_state;   /* HUBBLE_CT_* state of the packet */
	__u8 direction;  /* HUBBLE_DIR_* of the policy decision that dropped, or 0 */
	__u8 pad;        /* padding, 0 */
	__u32 ifindex;   /* interface the packet was dropped on, 0 if unknown */
	__u32 rule;      /* policy rule origin of a policy drop (policy_value.rule), else 0 */
};

/* Policy decision for a new connection (HUBBLE_MSG_POLICY_VERDICT). 56 bytes + packet. */
struct policy_verdict_event {
	struct event_hdr hdr;   /* hdr.source = the local endpoint that applied policy */
	__u32 remote_label;     /* identity of the peer */
	__u32 local_label;      /* identity of the local endpoint */
	__s32 verdict;          /* 0 = allowed, negative = -HUBBLE_DROP_* reason */
	__u16 dst_port;         /* destination L4 port the rule matched, host byte order */
	__u8 proto;             /* IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP) */
	__u8 direction;         /* HUBBLE_DIR_INGRESS or HUBBLE_DIR_EGRESS */
	__u8 match_type;        /* HUBBLE_POLICY_MATCH_* */
	__u8 audited;           /* 1 if policy is in audit mode (deny not enforced), else 0 */
	__u8 reason;            /* HUBBLE_CT_* state (REPLY hints is_reply) */
	__u8 pad;               /* padding, 0 */
	__u32 ifindex;          /* interface of the local endpoint, 0 if unknown */
	__u32 rule;             /* rule origin of the deciding entry (policy_value.rule), 0 if none */
	__u32 pad2;             /* padding to a multiple of 8, 0 */
};

/* A service translation of a new connection (HUBBLE_MSG_TRACE_SOCK), what
 * Cilium's socket LB reports as trace_sock_notify: hdr.subtype is the
 * HUBBLE_XLATE_* point, hdr.source the client endpoint, hdr.cap_len 0 (no
 * packet). One record per point. 64 bytes. */
struct trace_sock_event {
	struct event_hdr hdr;
	__u32 src_label;   /* security identity of the client */
	__u32 dst_label;   /* identity of dst_ip (the backend's after translation), 0 if unknown */
	__u32 src_ip;      /* client IPv4 address, network byte order (Cilium: from the cgroup) */
	__u32 dst_ip;      /* frontend (pre) or backend (post) IPv4 address, network byte order */
	__u16 dst_port;    /* frontend (pre) or backend (post) port, host byte order */
	__u8 l4_proto;     /* HUBBLE_SOCK_L4_* */
	__u8 flags;        /* HUBBLE_SOCK_F_* bits */
	__u32 pad;         /* padding, 0 */
	__u64 sock_cookie; /* stable per connection (hash of the tuple as sent), never 0 */
	__u64 cgroup_id;   /* 0: pods are in no cgroup the datapath knows */
};

HUBBLE_STATIC_ASSERT(sizeof(struct event_hdr) == 24, "event_hdr size");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct event_hdr, source) == 4, "event_hdr.source");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct event_hdr, cap_len) == 6, "event_hdr.cap_len");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct event_hdr, hash) == 8, "event_hdr.hash");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct event_hdr, orig_len) == 12, "event_hdr.orig_len");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct event_hdr, ktime_ns) == 16, "event_hdr.ktime_ns");

HUBBLE_STATIC_ASSERT(sizeof(struct trace_event) == 40, "trace_event size");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_event, src_label) == 24, "trace_event.src_label");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_event, dst_id) == 32, "trace_event.dst_id");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_event, reason) == 34, "trace_event.reason");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_event, ifindex) == 36, "trace_event.ifindex");

HUBBLE_STATIC_ASSERT(sizeof(struct drop_event) == 48, "drop_event size");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct drop_event, src_label) == 24, "drop_event.src_label");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct drop_event, line) == 34, "drop_event.line");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct drop_event, file) == 36, "drop_event.file");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct drop_event, ifindex) == 40, "drop_event.ifindex");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct drop_event, rule) == 44, "drop_event.rule");

HUBBLE_STATIC_ASSERT(sizeof(struct policy_verdict_event) == 56, "policy_verdict_event size");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct policy_verdict_event, verdict) == 32, "policy_verdict_event.verdict");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct policy_verdict_event, dst_port) == 36, "policy_verdict_event.dst_port");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct policy_verdict_event, match_type) == 40, "policy_verdict_event.match_type");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct policy_verdict_event, ifindex) == 44, "policy_verdict_event.ifindex");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct policy_verdict_event, rule) == 48, "policy_verdict_event.rule");

HUBBLE_STATIC_ASSERT(sizeof(struct trace_sock_event) == 64, "trace_sock_event size");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_sock_event, src_ip) == 32, "trace_sock_event.src_ip");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_sock_event, dst_port) == 40, "trace_sock_event.dst_port");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_sock_event, sock_cookie) == 48, "trace_sock_event.sock_cookie");
HUBBLE_STATIC_ASSERT(HUBBLE_OFFSETOF(struct trace_sock_event, cgroup_id) == 56, "trace_sock_event.cgroup_id");

#endif /* HUBBLE_EVENTS_H */
