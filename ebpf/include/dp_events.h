/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_events.h - writing hubble_events.h records into the `events` ring.
 *
 * - Every record reserves sizeof(kind struct) + HUBBLE_CAPTURE_MAX bytes
 *   (a reservation must have a constant size) and captures up to 128 bytes
 *   of the frame from the Ethernet header on.
 * - A failed reservation increments lost_events[0] on this CPU.
 * - Drops: always counted in drop_stats; the event itself is limited to
 *   dp_config.drop_events_per_s per CPU (suppressed ones are counted in
 *   drop_rl.suppressed).
 * - Traces: subject to the aggregation level (dp_trace_wanted).
 * - Policy verdicts: the callers emit one per policy decision, which happens
 *   only for packets without a live conntrack entry (new connections).
 */
#ifndef DP_EVENTS_H
#define DP_EVENTS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "hubble_events.h"
#include "dp_types.h"
#include "dp_maps.h"

_Static_assert((HUBBLE_CAPTURE_MAX & (HUBBLE_CAPTURE_MAX - 1)) == 0,
	       "dp_capture masks with HUBBLE_CAPTURE_MAX - 1");

/* The effective configuration (built-in defaults until the loader writes one). */
static __always_inline void dp_load_config(struct dp_config *out)
{
	__u32 zero = 0;
	struct dp_config *c = bpf_map_lookup_elem(&dp_config, &zero);

	if (c && (c->flags & DP_CFG_F_SET)) {
		*out = *c;
		return;
	}
	out->flags = 0;
	out->aggregation = DP_DEFAULT_AGGREGATION;
	out->report_interval_s = DP_DEFAULT_REPORT_INTERVAL_S;
	out->drop_events_per_s = DP_DEFAULT_DROP_EVENTS_PER_S;
	out->tunnel_ifindex = 0;
	out->pad2 = 0;
}

static __always_inline void dp_count_lost(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&lost_events, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Copies up to HUBBLE_CAPTURE_MAX frame bytes to dst; returns how many. */
static __always_inline __u32 dp_capture(struct __sk_buff *skb, void *dst)
{
	__u32 cap = skb->len, n;

	if (cap > HUBBLE_CAPTURE_MAX)
		cap = HUBBLE_CAPTURE_MAX;
	if (cap == 0)
		return 0;
	/* Provably in [1, MAX] for the verifier, unchanged for cap in [1, MAX]. */
	n = ((cap - 1) & (HUBBLE_CAPTURE_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, 0, dst, n) < 0)
		return 0;
	return n;
}

static __always_inline void dp_fill_hdr(struct event_hdr *hdr, __u8 type, __u8 subtype,
					__u16 source, struct __sk_buff *skb, __u32 cap)
{
	hdr->type = type;
	hdr->subtype = subtype;
	hdr->version = HUBBLE_EVENT_VERSION;
	hdr->flags = 0;
	hdr->source = source;
	hdr->cap_len = (__u16)cap;
	hdr->hash = bpf_get_hash_recalc(skb);
	hdr->orig_len = skb->len;
	hdr->ktime_ns = bpf_ktime_get_boot_ns();
}

/* Who a packet is between, as the events report it. */
struct dp_peers {
	__u32 src_identity;
	__u32 dst_identity;
	__u16 src_ep; /* source endpoint id, 0 if not local */
	__u16 dst_ep; /* destination endpoint id, 0 if not local */
};

/* Whether a trace at obs_point is emitted at this aggregation level.
 * `report` is the conntrack's opinion (new connection, new TCP flags or
 * report interval elapsed; see dp_conntrack.h). */
static __always_inline int dp_trace_wanted(const struct dp_config *cfg, __u8 obs_point,
					   __u8 report)
{
	/* Receive points, as Cilium's TRACE_AGGREGATE_RX. */
	if (cfg->aggregation >= DP_AGG_LOW &&
	    (obs_point == HUBBLE_TRACE_FROM_LXC || obs_point == HUBBLE_TRACE_FROM_STACK ||
	     obs_point == HUBBLE_TRACE_FROM_OVERLAY || obs_point == HUBBLE_TRACE_FROM_NETWORK))
		return 0;
	if (cfg->aggregation >= DP_AGG_MEDIUM && !report)
		return 0;
	return 1;
}

/* Counts a packet in `metrics` (reason 0 = forwarded). */
static __always_inline void dp_count_metric(__u8 reason, __u8 direction, __u32 len)
{
	__u32 key = DP_METRICS_INDEX(reason, direction);
	struct metrics_value *m = bpf_map_lookup_elem(&metrics, &key);

	if (m) {
		/* Per-CPU map: no other writer. */
		m->count++;
		m->bytes += len;
	}
}

/* Emits a trace. `source` is the endpoint the observation point belongs to.
 * The to-* points are where a packet leaves the program forwarded: they are
 * counted in `metrics` (to-endpoint as ingress, the others as egress)
 * whether or not the trace itself is emitted. */
static __always_inline void dp_emit_trace(struct __sk_buff *skb, const struct dp_config *cfg,
					  __u8 obs_point, __u16 source,
					  const struct dp_peers *peers, __u8 ct_state,
					  __u8 report, __u32 ifindex)
{
	struct trace_event *ev;

	if (obs_point == HUBBLE_TRACE_TO_LXC)
		dp_count_metric(0, HUBBLE_DIR_INGRESS, skb->len);
	else if (obs_point == HUBBLE_TRACE_TO_STACK || obs_point == HUBBLE_TRACE_TO_OVERLAY ||
		 obs_point == HUBBLE_TRACE_TO_NETWORK || obs_point == HUBBLE_TRACE_TO_HOST)
		dp_count_metric(0, HUBBLE_DIR_EGRESS, skb->len);
	if (!dp_trace_wanted(cfg, obs_point, report))
		return;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
	if (!ev) {
		dp_count_lost();
		return;
	}
	dp_fill_hdr(&ev->hdr, HUBBLE_MSG_TRACE, obs_point, source, skb,
		    dp_capture(skb, (void *)(ev + 1)));
	ev->src_label = peers->src_identity;
	ev->dst_label = peers->dst_identity;
	ev->dst_id = peers->dst_ep;
	ev->reason = ct_state;
	ev->pad = 0;
	ev->ifindex = ifindex;
	bpf_ringbuf_submit(ev, 0);
}

/* Counts a drop and, within the rate limit, emits its event. Returns
 * TC_ACT_SHOT so callers can `return dp_drop(...)`. */
static __always_inline int dp_drop_rule(struct __sk_buff *skb, const struct dp_config *cfg,
					__u8 reason, __u16 source, const struct dp_peers *peers,
					__u8 ct_state, __u8 direction, __u16 line, __u32 rule)
{
	__u32 key = reason, zero = 0;
	struct drop_stats_value *st = bpf_map_lookup_elem(&drop_stats, &key);
	struct drop_rl_value *rl;
	struct drop_event *ev;

	if (st) {
		__sync_fetch_and_add(&st->packets, 1);
		__sync_fetch_and_add(&st->bytes, skb->len);
	}
	dp_count_metric(reason, direction, skb->len);
	rl = bpf_map_lookup_elem(&drop_rl, &zero);
	if (rl && cfg->drop_events_per_s) {
		__u64 now = bpf_ktime_get_boot_ns();

		/* Per-CPU map: no other writer, plain updates are enough. */
		if (now - rl->window_ns >= 1000000000ULL) {
			rl->window_ns = now;
			rl->emitted = 0;
		}
		if (rl->emitted >= cfg->drop_events_per_s) {
			rl->suppressed++;
			return TC_ACT_SHOT;
		}
		rl->emitted++;
	}

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
	if (!ev) {
		dp_count_lost();
		return TC_ACT_SHOT;
	}
	dp_fill_hdr(&ev->hdr, HUBBLE_MSG_DROP, reason, source, skb,
		    dp_capture(skb, (void *)(ev + 1)));
	ev->src_label = peers->src_identity;
	ev->dst_label = peers->dst_identity;
	ev->dst_id = peers->dst_ep;
	ev->line = line;
	ev->file = HUBBLE_SRC_FILE_LXC;
	ev->ct_state = ct_state;
	ev->direction = direction;
	ev->pad = 0;
	ev->ifindex = skb->ifindex;
	ev->rule = rule;
	bpf_ringbuf_submit(ev, 0);
	return TC_ACT_SHOT;
}

/* dp_drop_rule for a drop no policy entry decided (rule origin 0). */
static __always_inline int dp_drop(struct __sk_buff *skb, const struct dp_config *cfg,
				   __u8 reason, __u16 source, const struct dp_peers *peers,
				   __u8 ct_state, __u8 direction, __u16 line)
{
	return dp_drop_rule(skb, cfg, reason, source, peers, ct_state, direction, line, 0);
}

/* One policy decision, as dp_policy.h produced it. */
struct dp_verdict {
	__s32 verdict;     /* 0 allowed, -HUBBLE_DROP_* denied (also when audited) */
	__u8 match_type;   /* HUBBLE_POLICY_MATCH_* */
	__u8 audited;      /* 1: denied by policy but forwarded (audit mode) */
	__u8 direction;    /* HUBBLE_DIR_* */
	__u8 pad;
	__u32 rule;        /* policy_value.rule of the deciding entry, 0 for a default deny */
};

static __always_inline void dp_emit_verdict(struct __sk_buff *skb, __u16 local_ep,
					    __u32 local_identity, __u32 remote_identity,
					    const struct dp_pkt *p, const struct dp_verdict *v,
					    __u32 ifindex)
{
	struct policy_verdict_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
	if (!ev) {
		dp_count_lost();
		return;
	}
	dp_fill_hdr(&ev->hdr, HUBBLE_MSG_POLICY_VERDICT, 0, local_ep, skb,
		    dp_capture(skb, (void *)(ev + 1)));
	ev->remote_label = remote_identity;
	ev->local_label = local_identity;
	ev->verdict = v->verdict;
	ev->dst_port = p->policy_port;
	ev->proto = p->proto;
	ev->direction = v->direction;
	ev->match_type = v->match_type;
	ev->audited = v->audited;
	ev->reason = HUBBLE_CT_NEW;
	ev->pad = 0;
	ev->ifindex = ifindex;
	ev->rule = v->rule;
	ev->pad2 = 0;
	bpf_ringbuf_submit(ev, 0);
}

#endif /* DP_EVENTS_H */
