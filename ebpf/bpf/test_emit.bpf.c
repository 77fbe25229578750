// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * test_emit.bpf.c - ABI test program.
 *
 * `emit_events` parses nothing: run with BPF_PROG_TEST_RUN on any frame, it
 * copies up to HUBBLE_CAPTURE_MAX bytes of the packet and emits one event of
 * each kind (trace, drop, policy verdict) into the `events` ring buffer, with
 * fixed, recognisable field values that userspace tests assert on. A failed
 * reserve increments `lost_events[0]`. Returns TC_ACT_OK (0).
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
 *            -Iebpf/include -c ebpf/bpf/test_emit.bpf.c -o test_emit.bpf.o
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "hubble_events.h"

_Static_assert((HUBBLE_CAPTURE_MAX & (HUBBLE_CAPTURE_MAX - 1)) == 0,
	       "copy_packet masks with HUBBLE_CAPTURE_MAX - 1");

/* Values written into every emitted event; mirrored by the Rust tests. */
#define TEST_SOURCE_EP 42
#define TEST_DST_EP 7
#define TEST_SRC_LABEL 0x10001
#define TEST_DST_LABEL 0x10002
#define TEST_PORT 80
#define TEST_RULE 0xc0ffee01 /* rule origin in the policy-verdict event */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&lost_events, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Clamp the capture length to [0, HUBBLE_CAPTURE_MAX] in a way the verifier
 * can follow (a plain compare on a 32-bit value). */
static __always_inline __u32 capture_len(const struct __sk_buff *skb)
{
	__u32 len = skb->len;

	if (len > HUBBLE_CAPTURE_MAX)
		len = HUBBLE_CAPTURE_MAX;
	return len;
}

static __always_inline void fill_hdr(struct event_hdr *hdr, __u8 type, __u8 subtype,
				     const struct __sk_buff *skb, __u32 cap)
{
	hdr->type = type;
	hdr->subtype = subtype;
	hdr->version = HUBBLE_EVENT_VERSION;
	hdr->flags = 0;
	hdr->source = TEST_SOURCE_EP;
	hdr->cap_len = (__u16)cap;
	hdr->hash = bpf_get_hash_recalc((struct __sk_buff *)skb);
	hdr->orig_len = skb->len;
	hdr->ktime_ns = bpf_ktime_get_boot_ns();
}

/* Copy `cap` packet bytes to `dst` (which has room for HUBBLE_CAPTURE_MAX).
 * On a load failure the event says it captured nothing. */
static __always_inline __u32 copy_packet(struct __sk_buff *skb, void *dst, __u32 cap)
{
	__u32 n;

	if (cap == 0)
		return 0;
	/* The size argument must be provably in [1, HUBBLE_CAPTURE_MAX]. A plain
	 * range check is not enough: clang rewrites it in a way the verifier
	 * loses the lower bound of. The mask gives [0, MAX-1], +1 gives
	 * [1, MAX], and for cap in [1, MAX] the value is unchanged. */
	n = ((cap - 1) & (HUBBLE_CAPTURE_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, 0, dst, n) < 0)
		return 0;
	return n;
}

SEC("classifier")
int emit_events(struct __sk_buff *skb)
{
	__u32 cap = capture_len(skb);

	/* Trace: from-endpoint, NEW connection. */
	{
		struct trace_event *ev = bpf_ringbuf_reserve(
			&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
		if (!ev) {
			count_lost();
		} else {
			__u32 got = copy_packet(skb, (void *)(ev + 1), cap);

			fill_hdr(&ev->hdr, HUBBLE_MSG_TRACE, HUBBLE_TRACE_FROM_LXC, skb, got);
			ev->src_label = TEST_SRC_LABEL;
			ev->dst_label = TEST_DST_LABEL;
			ev->dst_id = TEST_DST_EP;
			ev->reason = HUBBLE_CT_NEW;
			ev->pad = 0;
			ev->ifindex = skb->ifindex;
			bpf_ringbuf_submit(ev, 0);
		}
	}

	/* Drop: policy denied, on ingress of the destination endpoint. */
	{
		struct drop_event *ev = bpf_ringbuf_reserve(
			&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
		if (!ev) {
			count_lost();
		} else {
			__u32 got = copy_packet(skb, (void *)(ev + 1), cap);

			fill_hdr(&ev->hdr, HUBBLE_MSG_DROP, HUBBLE_DROP_POLICY_DENIED, skb, got);
			ev->src_label = TEST_SRC_LABEL;
			ev->dst_label = TEST_DST_LABEL;
			ev->dst_id = TEST_DST_EP;
			ev->line = __LINE__;
			ev->file = HUBBLE_SRC_FILE_TEST_EMIT;
			ev->ct_state = HUBBLE_CT_NEW;
			ev->direction = HUBBLE_DIR_INGRESS;
			ev->pad = 0;
			ev->ifindex = skb->ifindex;
			ev->rule = 0; /* a default deny: no rule decided */
			bpf_ringbuf_submit(ev, 0);
		}
	}

	/* Policy verdict: allowed by an L3-L4 rule, egress. */
	{
		struct policy_verdict_event *ev = bpf_ringbuf_reserve(
			&events, sizeof(*ev) + HUBBLE_CAPTURE_MAX, 0);
		if (!ev) {
			count_lost();
		} else {
			__u32 got = copy_packet(skb, (void *)(ev + 1), cap);

			fill_hdr(&ev->hdr, HUBBLE_MSG_POLICY_VERDICT, 0, skb, got);
			ev->remote_label = TEST_DST_LABEL;
			ev->local_label = TEST_SRC_LABEL;
			ev->verdict = 0;
			ev->dst_port = TEST_PORT;
			ev->proto = 6;
			ev->direction = HUBBLE_DIR_EGRESS;
			ev->match_type = HUBBLE_POLICY_MATCH_L3_L4;
			ev->audited = 0;
			ev->reason = HUBBLE_CT_NEW;
			ev->pad = 0;
			ev->ifindex = skb->ifindex;
			ev->rule = TEST_RULE;
			ev->pad2 = 0;
			bpf_ringbuf_submit(ev, 0);
		}
	}

	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
