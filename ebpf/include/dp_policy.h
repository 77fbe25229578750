/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dp_policy.h - the policy decision for a new connection.
 *
 * Cilium's semantics: an endpoint whose `enforced` flag is set for a
 * direction is default-deny there (only matching ALLOW entries let traffic
 * through); without the flag everything is allowed and no verdict is
 * reported. An explicit DENY entry that matches always wins over allows.
 * See dp_types.h for the six keys consulted and their match types.
 */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include "dp_maps.h"
#include "dp_events.h"

/* The candidate key i (0..5), most specific first, and its match type. */
static __always_inline __u8 dp_policy_candidate(struct policy_key *k, int i, __u32 identity,
						__u8 proto, __u16 port)
{
	switch (i) {
	case 0:
		k->identity = identity; k->proto = proto; k->dport = port;
		return HUBBLE_POLICY_MATCH_L3_L4;
	case 1:
		k->identity = identity; k->proto = proto; k->dport = 0;
		return HUBBLE_POLICY_MATCH_L3_L4;
	case 2:
		k->identity = 0; k->proto = proto; k->dport = port;
		return HUBBLE_POLICY_MATCH_L4_ONLY;
	case 3:
		k->identity = 0; k->proto = proto; k->dport = 0;
		return HUBBLE_POLICY_MATCH_L4_ONLY;
	case 4:
		k->identity = identity; k->proto = 0; k->dport = 0;
		return HUBBLE_POLICY_MATCH_L3_ONLY;
	default:
		k->identity = 0; k->proto = 0; k->dport = 0;
		return HUBBLE_POLICY_MATCH_ALL;
	}
}

/* Decides policy for `ep` in `direction` against the peer `remote_identity`.
 * Returns 0 when the packet may pass (allowed, or denied but audited) and
 * the drop code otherwise; `out` describes the decision for the verdict
 * event. Call only for endpoints enforcing that direction. */
static __always_inline int dp_policy_decide(const struct endpoint_value *ep, __u8 direction,
					    __u32 remote_identity, const struct dp_pkt *p,
					    struct dp_verdict *out)
{
	struct policy_key k = { .ep_id = ep->ep_id, .direction = direction, .pad = 0 };
	__u8 allow_action = 0, allow_match = HUBBLE_POLICY_MATCH_NONE;
	__u8 deny = 0, deny_match = HUBBLE_POLICY_MATCH_NONE;
	int i;

	out->direction = direction;
	out->pad = 0;
#pragma unroll
	for (i = 0; i < 6; i++) {
		__u8 match = dp_policy_candidate(&k, i, remote_identity, p->proto, p->policy_port);
		struct policy_value *v = bpf_map_lookup_elem(&policy, &k);

		if (!v)
			continue;
		if (v->action == DP_POLICY_DENY) {
			deny = 1;
			deny_match = match;
			break;
		}
		if (!allow_action && (v->action == DP_POLICY_ALLOW || v->action == DP_POLICY_AUDIT)) {
			allow_action = v->action;
			allow_match = match;
		}
	}

	if (deny) {
		out->verdict = -HUBBLE_DROP_POLICY_DENY;
		out->match_type = deny_match;
		out->audited = 0;
	} else if (allow_action == DP_POLICY_ALLOW) {
		out->verdict = 0;
		out->match_type = allow_match;
		out->audited = 0;
		return 0;
	} else if (allow_action == DP_POLICY_AUDIT) {
		/* A deny rule in audit mode: report what it would do, forward. */
		out->verdict = -HUBBLE_DROP_POLICY_DENY;
		out->match_type = allow_match;
		out->audited = 1;
		return 0;
	} else {
		out->verdict = -HUBBLE_DROP_POLICY_DENIED;
		out->match_type = HUBBLE_POLICY_MATCH_NONE;
		out->audited = 0;
	}
	if (ep->flags & DP_EP_F_AUDIT) {
		out->audited = 1;
		return 0;
	}
	return -out->verdict;
}

#endif /* DP_POLICY_H */
