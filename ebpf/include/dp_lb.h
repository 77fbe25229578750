/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_lb.h - service load balancing: per-packet DNAT of a service frontend
 * (VIP:port) to one of its backends, and the reverse translation of the
 * replies. Maps and layouts: dp_types.h ("Services").
 *
 * A packet to a frontend, before conntrack and policy (dp_lb4_select):
 * - the service CT entry {client -> VIP:port} (DP_CT_F_SERVICE in ct4) of a
 *   live connection names its backend: kept while that backend exists,
 *   even when it left the service or is terminating;
 * - otherwise a new choice among the active slots 1..count: the client's
 *   affinity entry (DP_LB_F_AFFINITY) if still valid, the service's Maglev
 *   table (DP_LB_ALG_MAGLEV), else bpf_get_prandom_u32() % count; a slot
 *   whose backend is gone or terminating is skipped (up to DP_LB_MAX_PROBE
 *   slots tried); no usable backend is HUBBLE_DROP_SERVICE_BACKEND_NOT_FOUND;
 * - the choice is written into the service CT entry.
 * The caller then looks up conntrack and applies policy on the translated
 * tuple (the backend's identity), and rewrites the packet (dp_lb4_rewrite,
 * with the L3 and L4 checksums fixed). The backend CT entry carries the
 * rev_nat_id; a REPLY on it gets its source restored to the frontend
 * (dp_lb4_rev_nat) wherever it is delivered.
 *
 * Only TCP and UDP frontends exist (SCTP's CRC32c cannot be patched
 * incrementally).
 */
#ifndef DP_LB_H
#define DP_LB_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "hubble_events.h"
#include "dp_types.h"
#include "dp_maps.h"
#include "dp_parse.h"
#include "dp_conntrack.h"
#include "dp_events.h"

/* The outcome of dp_lb4_select for one packet. */
struct dp_lb {
	__u32 orig_daddr;  /* frontend VIP, network order */
	__u32 backend_id;  /* chosen backend */
	__u32 backend_ip;  /* network order */
	__u16 orig_dport;  /* frontend port, host order */
	__u16 backend_port;
	__u16 rev_nat_id;
	__u8 is_service;   /* 1: the destination was a frontend */
	__u8 is_new;       /* 1: a new connection got its backend now */
};

/* 5-tuple hash for Maglev: the same connection always lands on the same
 * table entry, on every node (murmur3's finalizer over the mixed tuple). */
static __always_inline __u32 dp_lb_hash(const struct dp_pkt *p)
{
	__u32 h = p->saddr * 0x9e3779b1U;

	h ^= p->daddr + 0x7f4a7c15U + (h << 6) + (h >> 2);
	h ^= (((__u32)p->sport << 16) | p->dport) + 0x7f4a7c15U + (h << 6) + (h >> 2);
	h ^= p->proto;
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

static __always_inline void dp_lb_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&lb4_stats, &stat);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline const struct lb4_backend *dp_lb_backend(__u32 id)
{
	if (!id)
		return 0;
	return bpf_map_lookup_elem(&lb4_backends, &id);
}

static __always_inline int dp_lb_usable(const struct lb4_backend *b)
{
	return b && !(b->flags & DP_LB_BACKEND_F_TERMINATING);
}

/* The first usable backend from active slot index `start` (0-based) on. */
static __always_inline __u32 dp_lb_pick_slot(const struct lb4_key *master, __u32 count,
					     __u32 start)
{
	struct lb4_key k = *master;
	struct lb4_service *slot;
	__u32 i;

	for (i = 0; i < DP_LB_MAX_PROBE; i++) {
		if (i >= count)
			break;
		k.backend_slot = (__u16)((start + i) % count + 1);
		slot = bpf_map_lookup_elem(&lb4_services, &k);
		if (slot && dp_lb_usable(dp_lb_backend(slot->backend_id)))
			return slot->backend_id;
	}
	return 0;
}

/* Lifetime of a service CT entry after this packet. */
static __always_inline __u64 dp_lb_ct_lifetime(const struct dp_pkt *p)
{
	if (p->proto != IPPROTO_TCP)
		return DP_CT_LIFETIME_NONTCP_S * DP_NS_PER_S;
	if (p->tcp_flags & (DP_TCP_RST | DP_TCP_FIN))
		return DP_CT_CLOSE_TIMEOUT_S * DP_NS_PER_S;
	if ((p->tcp_flags & (DP_TCP_SYN | DP_TCP_ACK)) == DP_TCP_SYN)
		return DP_CT_SYN_TIMEOUT_S * DP_NS_PER_S;
	return DP_CT_LIFETIME_TCP_S * DP_NS_PER_S;
}

/* A new backend for a new connection of `svc` (master entry at `k`). */
static __always_inline __u32 dp_lb_choose(const struct dp_pkt *p, const struct lb4_key *k,
					  const struct lb4_service *svc, __u64 now)
{
	struct lb4_affinity_key ak = {};
	struct lb4_affinity_value *av, nv = {};
	__u32 id = 0, count = svc->count, rev = svc->rev_nat_id;

	if (count == 0)
		return 0;
	if (svc->flags & DP_LB_F_AFFINITY) {
		ak.client_ip = p->saddr;
		ak.rev_nat_id = (__u16)rev;
		av = bpf_map_lookup_elem(&lb4_affinity, &ak);
		if (av && now - av->last_used_ns < (__u64)svc->affinity_timeout_s * DP_NS_PER_S &&
		    dp_lb_usable(dp_lb_backend(av->backend_id)))
			id = av->backend_id;
	}
	if (!id && svc->algorithm == DP_LB_ALG_MAGLEV && rev < DP_LB_MAGLEV_SERVICES) {
		__u32 idx = rev * DP_LB_MAGLEV_M + dp_lb_hash(p) % DP_LB_MAGLEV_M;
		__u32 *m = bpf_map_lookup_elem(&lb4_maglev, &idx);

		if (m && dp_lb_usable(dp_lb_backend(*m)))
			id = *m;
	}
	if (!id)
		id = dp_lb_pick_slot(k, count, bpf_get_prandom_u32() % count);
	if (id && (svc->flags & DP_LB_F_AFFINITY)) {
		nv.last_used_ns = now;
		nv.backend_id = id;
		bpf_map_update_elem(&lb4_affinity, &ak, &nv, BPF_ANY);
	}
	return id;
}

/* Whether the packet is for a service and, if so, which backend serves it
 * (see the top of this file); `nodeport_only`: only NodePort frontends
 * count (traffic from outside the cluster). Returns 0 or a HUBBLE_DROP_*
 * code; fills *lb (lb->is_service = 0 when the destination is no
 * frontend). */
static __always_inline int dp_lb4_select(const struct dp_pkt *p, __u64 now, struct dp_lb *lb,
					 int nodeport_only)
{
	struct lb4_key k = {};
	struct lb4_service *svc;
	const struct lb4_backend *b = 0;
	struct ct_key ck;
	struct ct_value *ce, nv;
	__u32 id = 0;

	lb->is_service = 0;
	lb->is_new = 0;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return 0;
	k.vip = p->daddr;
	k.dport = p->dport;
	k.proto = p->proto;
	svc = bpf_map_lookup_elem(&lb4_services, &k);
	if (!svc || (nodeport_only && !(svc->flags & DP_LB_F_NODEPORT)))
		return 0;
	lb->is_service = 1;
	lb->orig_daddr = p->daddr;
	lb->orig_dport = p->dport;
	lb->rev_nat_id = svc->rev_nat_id;

	/* A live connection keeps its backend while the backend exists. */
	dp_ct_key(p, &ck);
	ce = bpf_map_lookup_elem(&ct4, &ck);
	if (ce && (ce->flags & DP_CT_F_SERVICE) && ce->expires_ns > now &&
	    !dp_ct_restart(ce, p)) {
		b = dp_lb_backend(ce->backend_id);
		if (b) {
			id = ce->backend_id;
			lb->rev_nat_id = ce->rev_nat_id;
			if (p->proto == IPPROTO_TCP && (p->tcp_flags & (DP_TCP_RST | DP_TCP_FIN)))
				ce->flags |= DP_CT_F_RST; /* closing: a fresh SYN starts over */
			ce->expires_ns = now + dp_lb_ct_lifetime(p);
			__sync_fetch_and_add(&ce->fwd_packets, 1);
			__sync_fetch_and_add(&ce->fwd_bytes, p->len);
		}
	}
	if (!b) {
		id = dp_lb_choose(p, &k, svc, now);
		b = dp_lb_backend(id);
		if (!b)
			return HUBBLE_DROP_SERVICE_BACKEND_NOT_FOUND;
		__builtin_memset(&nv, 0, sizeof(nv));
		nv.created_ns = now;
		nv.expires_ns = now + dp_lb_ct_lifetime(p);
		nv.fwd_packets = 1;
		nv.fwd_bytes = p->len;
		nv.fwd_report_ns = now;
		nv.fwd_flags_seen = p->tcp_flags;
		nv.flags = DP_CT_F_SERVICE;
		nv.rev_nat_id = lb->rev_nat_id;
		nv.backend_id = id;
		if (bpf_map_update_elem(&ct4, &ck, &nv, BPF_ANY) < 0)
			return HUBBLE_DROP_CT_MAP_INSERTION_FAILED;
		dp_lb_count(DP_LB_STAT_NEW);
		lb->is_new = 1;
	}
	lb->backend_id = id;
	lb->backend_ip = b->ip;
	lb->backend_port = b->port;
	return 0;
}

/* One trace-sock record (hubble_events.h) of a translation point. */
static __always_inline void dp_lb_emit_xlate(__u8 point, __u16 source, __u32 src_label,
					     __u32 dst_label, __u32 saddr, __u32 daddr,
					     __u16 dport, __u8 l4, __u64 cookie)
{
	struct trace_sock_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		dp_count_lost();
		return;
	}
	ev->hdr.type = HUBBLE_MSG_TRACE_SOCK;
	ev->hdr.subtype = point;
	ev->hdr.version = HUBBLE_EVENT_VERSION;
	ev->hdr.flags = 0;
	ev->hdr.source = source;
	ev->hdr.cap_len = 0;
	ev->hdr.hash = 0;
	ev->hdr.orig_len = 0;
	ev->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	ev->src_label = src_label;
	ev->dst_label = dst_label;
	ev->src_ip = saddr;
	ev->dst_ip = daddr;
	ev->dst_port = dport;
	ev->l4_proto = l4;
	ev->flags = 0;
	ev->pad = 0;
	ev->sock_cookie = cookie;
	ev->cgroup_id = 0;
	bpf_ringbuf_submit(ev, 0);
}

/* Reports the translation of a NEW connection the way Cilium's socket LB
 * does (trace-sock, ARCHITECTURE.md "Services"): PRE_DIRECTION_FWD with
 * the frontend, POST_DIRECTION_FWD with the chosen backend. Emitted at
 * every aggregation level (one pair per new connection). `p` is the packet
 * as sent (destination = frontend); `src_ep`/`src_label` the client,
 * `backend_label` the backend's identity. */
static __always_inline void dp_lb4_trace_xlate(const struct dp_pkt *p, const struct dp_lb *lb,
					       __u16 src_ep, __u32 src_label,
					       __u32 backend_label)
{
	__u8 l4 = p->proto == IPPROTO_TCP ? HUBBLE_SOCK_L4_TCP : HUBBLE_SOCK_L4_UDP;
	/* The socket cookie of a socket LB: here the hash of the tuple as
	 * sent, the same for both points; never 0 (0 reads as "none"). */
	__u64 cookie = ((__u64)dp_lb_hash(p) << 1) | 1;

	if (!lb->is_service || !lb->is_new)
		return;
	dp_lb_emit_xlate(HUBBLE_XLATE_PRE_DIRECTION_FWD, src_ep, src_label, 0, p->saddr,
			 lb->orig_daddr, lb->orig_dport, l4, cookie);
	dp_lb_emit_xlate(HUBBLE_XLATE_POST_DIRECTION_FWD, src_ep, src_label, backend_label,
			 p->saddr, lb->backend_ip, lb->backend_port, l4, cookie);
}

/* Rewrites the destination (dst = 1) or source (dst = 0) address and port
 * of a parsed TCP/UDP packet, fixing the IPv4 header checksum and the L4
 * checksum (pseudo header included; a UDP checksum of 0 stays 0). Ports in
 * host order. Returns 0 or HUBBLE_DROP_ERROR_WRITING_TO_PACKET. */
static __always_inline int dp_lb4_rewrite(struct __sk_buff *skb, const struct dp_pkt *p, int dst,
					  __u32 old_ip, __u32 new_ip, __u16 old_port,
					  __u16 new_port)
{
	__u32 ip_off = DP_ETH_HLEN + (dst ? 16 : 12);
	__u32 l4_off = p->l4_off;
	__u32 port_off, csum_off, l4_flags = BPF_F_PSEUDO_HDR;
	__be16 oldp = bpf_htons(old_port), newp = bpf_htons(new_port);

	if (l4_off > DP_ETH_HLEN + 60)
		return HUBBLE_DROP_ERROR_WRITING_TO_PACKET;
	port_off = l4_off + (dst ? 2 : 0);
	if (p->proto == IPPROTO_TCP) {
		csum_off = l4_off + 16;
	} else {
		csum_off = l4_off + 6;
		l4_flags |= BPF_F_MARK_MANGLED_0;
	}
	if (old_ip != new_ip) {
		if (bpf_l4_csum_replace(skb, csum_off, old_ip, new_ip, l4_flags | 4) < 0 ||
		    bpf_l3_csum_replace(skb, DP_ETH_HLEN + 10, old_ip, new_ip, 4) < 0 ||
		    bpf_skb_store_bytes(skb, ip_off, &new_ip, 4, 0) < 0)
			return HUBBLE_DROP_ERROR_WRITING_TO_PACKET;
	}
	if (oldp != newp) {
		if (bpf_l4_csum_replace(skb, csum_off, oldp, newp,
					(l4_flags & BPF_F_MARK_MANGLED_0) | 2) < 0 ||
		    bpf_skb_store_bytes(skb, port_off, &newp, 2, 0) < 0)
			return HUBBLE_DROP_ERROR_WRITING_TO_PACKET;
	}
	return 0;
}

/* DNAT of a packet dp_lb4_select translated; p gets the backend as its
 * destination (p must already carry it for conntrack: see the caller). */
static __always_inline int dp_lb4_dnat(struct __sk_buff *skb, const struct dp_pkt *p,
				       const struct dp_lb *lb)
{
	int ret = dp_lb4_rewrite(skb, p, 1, lb->orig_daddr, lb->backend_ip, lb->orig_dport,
				 lb->backend_port);

	if (!ret)
		dp_lb_count(DP_LB_STAT_DNAT);
	return ret;
}

/* Reports the reverse translation of a UDP reply to a local client the way
 * Cilium's socket LB reports it on receive (PRE_DIRECTION_REV with the
 * backend, POST_DIRECTION_REV with the frontend). Cilium emits these per
 * received datagram and hides them from aggregation level low up; ours are
 * per reply packet, so only at aggregation none. `p` is the reply before
 * translation (source = backend); the cookie is the forward points'. */
static __always_inline void dp_lb4_trace_rev(const struct dp_config *cfg, const struct dp_pkt *p,
					     const struct dp_peers *peers, __u32 vip,
					     __u16 vport)
{
	struct dp_pkt fwd = {};
	__u64 cookie;

	if (cfg->aggregation != DP_AGG_NONE || p->proto != IPPROTO_UDP || !peers->dst_ep ||
	    p->daddr == bpf_htonl(DP_LB_HAIRPIN_IP4))
		return;
	fwd.saddr = p->daddr;
	fwd.daddr = vip;
	fwd.sport = p->dport;
	fwd.dport = vport;
	fwd.proto = p->proto;
	cookie = ((__u64)dp_lb_hash(&fwd) << 1) | 1;
	dp_lb_emit_xlate(HUBBLE_XLATE_PRE_DIRECTION_REV, peers->dst_ep, peers->dst_identity,
			 peers->src_identity, p->daddr, p->saddr, p->sport, HUBBLE_SOCK_L4_UDP,
			 cookie);
	dp_lb_emit_xlate(HUBBLE_XLATE_POST_DIRECTION_REV, peers->dst_ep, peers->dst_identity, 0,
			 p->daddr, vip, vport, HUBBLE_SOCK_L4_UDP, cookie);
}

/* A reply of a translated connection: its source becomes the frontend the
 * client talked to; *rnat_flags gets the frontend's DP_LB_RNAT_F_* (0 if
 * not translated). A frontend deleted meanwhile leaves the packet as is.
 * A UDP reply to a local client is reported as trace-sock at aggregation
 * none (dp_lb4_trace_rev; `peers`: backend = source, client = destination).
 * Returns 0 or a HUBBLE_DROP_* code; updates p. */
static __always_inline int dp_lb4_rev_nat(struct __sk_buff *skb, const struct dp_config *cfg,
					  struct dp_pkt *p, const struct dp_peers *peers,
					  __u16 rev_nat_id, __u8 *rnat_flags)
{
	struct lb4_reverse_nat *r;
	__u32 vip;
	__u16 port;
	int ret;

	*rnat_flags = 0;
	if (!rev_nat_id || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 0;
	r = bpf_map_lookup_elem(&lb4_reverse_nat, &rev_nat_id);
	if (!r)
		return 0;
	vip = r->vip;
	port = r->port;
	*rnat_flags = r->flags;
	ret = dp_lb4_rewrite(skb, p, 0, p->saddr, vip, p->sport, port);
	if (ret)
		return ret;
	dp_lb4_trace_rev(cfg, p, peers, vip, port);
	p->saddr = vip;
	p->sport = port;
	dp_lb_count(DP_LB_STAT_REV_NAT);
	return 0;
}

/* Sends a NodePort reply (its source is now a node address) out of the
 * device the FIB chooses for its destination, with the next hop's MAC: the
 * node stack would drop it as a martian (a local source address arriving
 * on another interface). Returns the TC action: a redirect, or TC_ACT_OK
 * (the stack) when the FIB has no answer (forwarding off, no route). */
static __always_inline int dp_lb_fib_redirect(struct __sk_buff *skb, const struct dp_pkt *p)
{
	struct bpf_fib_lookup fib;
	__u8 macs[12];
	int rc;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = 2; /* AF_INET */
	fib.l4_protocol = p->proto;
	fib.sport = bpf_htons(p->sport);
	fib.dport = bpf_htons(p->dport);
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = skb->ifindex; /* as if routed in from here */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(macs, fib.dmac, 6);
		__builtin_memcpy(macs + 6, fib.smac, 6);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
			return TC_ACT_OK;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
	return TC_ACT_OK;
}

#endif /* DP_LB_H */
