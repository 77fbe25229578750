/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_conntrack.h - IPv4 connection tracking in the `ct4` LRU hash.
 *
 * One entry per connection, keyed by the tuple of its first packet (see
 * dp_types.h). dp_ct_lookup classifies a packet as NEW (no live entry),
 * ESTABLISHED (original direction) or REPLY (reversed tuple), updates the
 * live entry (counters, TCP flags seen, closing state, expiry) and says
 * whether a trace should be reported under medium/max aggregation:
 *
 * - NEW: always;
 * - a TCP flag in the report mask not yet reported in this direction
 *   (medium: SYN, ACK, FIN, RST - the handshake and the teardown; max: SYN,
 *   FIN, RST);
 * - medium only: report_interval_s elapsed since the last report in this
 *   direction, so a long steady flow still shows up periodically.
 *
 * Lifetimes follow Cilium: TCP 60 s until a reply is seen, then 6 h, 10 s
 * after RST or FIN in both directions; other protocols 60 s. An expired
 * entry counts as absent (the next packet is NEW and goes through policy
 * again); so does a closing TCP entry when a fresh SYN arrives.
 */
#ifndef DP_CONNTRACK_H
#define DP_CONNTRACK_H

#include "dp_maps.h"
#include "dp_parse.h"

#define DP_NS_PER_S 1000000000ULL

#define DP_CT_REPORT_MEDIUM (DP_TCP_SYN | DP_TCP_ACK | DP_TCP_FIN | DP_TCP_RST)
#define DP_CT_REPORT_MAX (DP_TCP_SYN | DP_TCP_FIN | DP_TCP_RST)

static __always_inline void dp_ct_key(const struct dp_pkt *p, struct ct_key *k)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

static __always_inline void dp_ct_reverse(const struct ct_key *k, struct ct_key *r)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->pad[0] = 0;
	r->pad[1] = 0;
	r->pad[2] = 0;
}

static __always_inline __u64 dp_ct_lifetime(const struct ct_value *e, __u8 proto)
{
	if (proto != IPPROTO_TCP)
		return DP_CT_LIFETIME_NONTCP_S * DP_NS_PER_S;
	if ((e->flags & DP_CT_F_RST) ||
	    ((e->flags & DP_CT_F_FWD_CLOSING) && (e->flags & DP_CT_F_REV_CLOSING)))
		return DP_CT_CLOSE_TIMEOUT_S * DP_NS_PER_S;
	if (e->flags & DP_CT_F_SEEN_REPLY)
		return DP_CT_LIFETIME_TCP_S * DP_NS_PER_S;
	return DP_CT_SYN_TIMEOUT_S * DP_NS_PER_S;
}

/* Whether a TCP SYN (without ACK) must start over on this entry. */
static __always_inline int dp_ct_restart(const struct ct_value *e, const struct dp_pkt *p)
{
	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (DP_TCP_SYN | DP_TCP_ACK)) != DP_TCP_SYN)
		return 0;
	return (e->flags & DP_CT_F_RST) ||
	       ((e->flags & DP_CT_F_FWD_CLOSING) && (e->flags & DP_CT_F_REV_CLOSING));
}

/* Updates a live entry for a packet in direction `reply` and decides
 * whether to report it. */
static __always_inline __u8 dp_ct_update(struct ct_value *e, const struct dp_pkt *p, int reply,
					 const struct dp_config *cfg, __u64 now)
{
	__u8 flags = p->tcp_flags, report = 0, mask, fresh;
	__u8 *reported = reply ? &e->rev_flags_reported : &e->fwd_flags_reported;
	__u64 *last = reply ? &e->rev_report_ns : &e->fwd_report_ns;

	if (reply) {
		__sync_fetch_and_add(&e->rev_packets, 1);
		__sync_fetch_and_add(&e->rev_bytes, p->len);
		e->rev_flags_seen |= flags;
		e->flags |= DP_CT_F_SEEN_REPLY;
	} else {
		__sync_fetch_and_add(&e->fwd_packets, 1);
		__sync_fetch_and_add(&e->fwd_bytes, p->len);
		e->fwd_flags_seen |= flags;
	}
	if (p->proto == IPPROTO_TCP) {
		if (flags & DP_TCP_RST)
			e->flags |= DP_CT_F_RST;
		if (flags & DP_TCP_FIN)
			e->flags |= reply ? DP_CT_F_REV_CLOSING : DP_CT_F_FWD_CLOSING;
	}
	e->expires_ns = now + dp_ct_lifetime(e, p->proto);

	mask = cfg->aggregation >= DP_AGG_MAX ? DP_CT_REPORT_MAX : DP_CT_REPORT_MEDIUM;
	fresh = flags & mask & ~*reported;
	if (fresh) {
		*reported |= fresh;
		report = 1;
	}
	if (cfg->aggregation < DP_AGG_MAX && cfg->report_interval_s &&
	    now - *last >= (__u64)cfg->report_interval_s * DP_NS_PER_S)
		report = 1;
	if (report)
		*last = now;
	return report;
}

/* What a live entry says about the connection beyond its state. */
struct dp_ct_info {
	__u32 tunnel_ep;  /* node it came from through the overlay, 0 if none */
	__u16 rev_nat_id; /* service it was translated for, 0 if none */
	__u16 pad;
};

/* Classifies the packet: HUBBLE_CT_NEW, _ESTABLISHED or _REPLY; *report is
 * set for established and reply packets (always 1 for NEW); *info is the
 * entry's service (which a REPLY must be reverse-translated for, dp_lb.h)
 * and origin node (all 0 for NEW). */
static __always_inline __u8 dp_ct_lookup(const struct dp_pkt *p, const struct dp_config *cfg,
					 __u64 now, __u8 *report, struct dp_ct_info *info)
{
	struct ct_key k, r;
	struct ct_value *e;

	*report = 1;
	info->tunnel_ep = 0;
	info->rev_nat_id = 0;
	info->pad = 0;
	dp_ct_key(p, &k);
	e = bpf_map_lookup_elem(&ct4, &k);
	if (e && e->expires_ns > now && !dp_ct_restart(e, p)) {
		*report = dp_ct_update(e, p, 0, cfg, now);
		info->rev_nat_id = e->rev_nat_id;
		info->tunnel_ep = e->tunnel_ep;
		return HUBBLE_CT_ESTABLISHED;
	}
	dp_ct_reverse(&k, &r);
	e = bpf_map_lookup_elem(&ct4, &r);
	if (e && e->expires_ns > now) {
		*report = dp_ct_update(e, p, 1, cfg, now);
		info->rev_nat_id = e->rev_nat_id;
		info->tunnel_ep = e->tunnel_ep;
		return HUBBLE_CT_REPLY;
	}
	return HUBBLE_CT_NEW;
}

/* Creates (or replaces a dead) entry for a NEW packet that policy allowed;
 * `rev_nat_id` is the service it was translated for, `tunnel_ep` the node
 * it came from through the overlay (0 if none).
 * Returns 0 or HUBBLE_DROP_CT_MAP_INSERTION_FAILED. */
static __always_inline int dp_ct_create(const struct dp_pkt *p, const struct dp_peers *peers,
					__u64 now, __u16 rev_nat_id, __u32 tunnel_ep)
{
	struct ct_key k;
	struct ct_value v;

	__builtin_memset(&v, 0, sizeof(v));
	dp_ct_key(p, &k);
	v.created_ns = now;
	v.fwd_packets = 1;
	v.fwd_bytes = p->len;
	v.fwd_report_ns = now;
	v.src_identity = peers->src_identity;
	v.dst_identity = peers->dst_identity;
	v.src_ep = peers->src_ep;
	v.dst_ep = peers->dst_ep;
	v.fwd_flags_seen = p->tcp_flags;
	v.fwd_flags_reported = p->tcp_flags & DP_CT_REPORT_MEDIUM;
	v.rev_nat_id = rev_nat_id;
	v.tunnel_ep = tunnel_ep;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & DP_TCP_RST))
		v.flags |= DP_CT_F_RST;
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & DP_TCP_FIN))
		v.flags |= DP_CT_F_FWD_CLOSING;
	v.expires_ns = now + dp_ct_lifetime(&v, p->proto);
	if (bpf_map_update_elem(&ct4, &k, &v, BPF_ANY) < 0)
		return HUBBLE_DROP_CT_MAP_INSERTION_FAILED;
	return 0;
}

#endif /* DP_CONNTRACK_H */
