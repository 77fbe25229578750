use crate::*;

fn trace() -> TraceEvent {
    TraceEvent {
        hdr: EventHdr {
            source: 0x1234,
            hash: 0xdead_beef,
            orig_len: 1500,
            ktime_ns: 0x0102_0304_0506_0708,
            ..EventHdr::new(msg_type::TRACE, trace_point::FROM_LXC)
        },
        src_label: 0x10001,
        dst_label: 2,
        dst_id: 77,
        reason: ct_state::NEW,
        pad: 0,
        ifindex: 9,
    }
}

fn drop_ev() -> DropEvent {
    DropEvent {
        hdr: EventHdr::new(msg_type::DROP, drop_reason::POLICY_DENIED),
        src_label: 3,
        dst_label: 4,
        dst_id: 5,
        line: 321,
        file: src_file::TEST_EMIT,
        ct_state: ct_state::NEW,
        direction: direction::INGRESS,
        pad: 0,
        ifindex: 6,
        rule: 0,
    }
}

fn verdict() -> PolicyVerdictEvent {
    PolicyVerdictEvent {
        hdr: EventHdr::new(msg_type::POLICY_VERDICT, 0),
        remote_label: 8,
        local_label: 9,
        verdict: -i32::from(drop_reason::POLICY_DENY),
        dst_port: 8080,
        proto: 6,
        direction: direction::EGRESS,
        match_type: policy_match::L3_L4,
        audited: 1,
        reason: ct_state::NEW,
        pad: 0,
        ifindex: 11,
        rule: 0,
        pad2: 0,
    }
}

#[test]
fn roundtrip_each_kind() {
    let payload: Vec<u8> = (0..60).collect();
    let mut buf = Vec::new();

    trace().encode(&payload, &mut buf);
    assert_eq!(buf.len(), TraceEvent::SIZE + 60);
    let RawEvent::Trace(t, p) = parse(&buf).unwrap() else {
        panic!("not a trace")
    };
    assert_eq!(
        t,
        TraceEvent {
            hdr: EventHdr {
                cap_len: 60,
                ..trace().hdr
            },
            ..trace()
        }
    );
    assert_eq!(p, &payload[..]);

    buf.clear();
    drop_ev().encode(&payload, &mut buf);
    let ev = parse(&buf).unwrap();
    assert_eq!(ev.hdr().subtype, drop_reason::POLICY_DENIED);
    let RawEvent::Drop(d, p) = ev else {
        panic!("not a drop")
    };
    assert_eq!(d.line, 321);
    assert_eq!(d.direction, direction::INGRESS);
    assert_eq!(p.len(), 60);

    buf.clear();
    verdict().encode(&[], &mut buf);
    let RawEvent::PolicyVerdict(v, p) = parse(&buf).unwrap() else {
        panic!("not a verdict")
    };
    assert_eq!(v, verdict());
    assert!(p.is_empty());
    assert!(!v.allowed());
    assert_eq!(v.deny_reason(), Some(drop_reason::POLICY_DENY));
}

#[test]
fn encode_truncates_payload_to_capture_max() {
    let payload = vec![0xaa; 300];
    let mut buf = Vec::new();
    trace().encode(&payload, &mut buf);
    assert_eq!(buf.len(), TraceEvent::SIZE + CAPTURE_MAX);
    let ev = parse(&buf).unwrap();
    assert_eq!(usize::from(ev.hdr().cap_len), CAPTURE_MAX);
    assert_eq!(ev.payload().len(), CAPTURE_MAX);
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut buf = Vec::new();
    trace().encode(&[1, 2, 3], &mut buf);
    buf.extend_from_slice(&[0u8; 125]);
    assert_eq!(parse(&buf).unwrap().payload(), &[1, 2, 3]);
}

#[test]
fn little_endian_wire_format() {
    let mut buf = Vec::new();
    trace().encode(&[], &mut buf);
    assert_eq!(
        &buf[..4],
        &[msg_type::TRACE, trace_point::FROM_LXC, EVENT_VERSION, 0]
    );
    assert_eq!(&buf[4..6], &[0x34, 0x12]);
    assert_eq!(&buf[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]);
}

#[test]
fn errors_on_bad_input() {
    assert!(matches!(
        parse(&[]),
        Err(AbiError::Truncated {
            need: 24,
            got: 0,
            ..
        })
    ));

    let mut buf = Vec::new();
    trace().encode(&[1, 2, 3, 4], &mut buf);

    // Every strict prefix shorter than the struct is Truncated.
    for n in 0..TraceEvent::SIZE {
        assert!(
            matches!(parse(&buf[..n]), Err(AbiError::Truncated { .. })),
            "len {n}"
        );
    }
    // cap_len larger than what follows.
    assert_eq!(
        parse(&buf[..TraceEvent::SIZE + 2]),
        Err(AbiError::BadCaptureLength {
            cap_len: 4,
            available: 2
        })
    );

    // Version 1 (before rule origins) and a future version are refused.
    for v in [1, EVENT_VERSION + 1] {
        let mut bad = buf.clone();
        bad[2] = v;
        assert_eq!(
            parse(&bad),
            Err(AbiError::UnsupportedVersion { version: v })
        );
    }

    let mut bad = buf.clone();
    bad[0] = msg_type::DEBUG;
    assert_eq!(parse(&bad), Err(AbiError::UnknownType { r#type: 2 }));

    // cap_len above the ABI maximum, even with enough bytes.
    let mut bad = buf.clone();
    bad[6..8].copy_from_slice(&200u16.to_le_bytes());
    bad.extend_from_slice(&[0; 300]);
    assert!(matches!(
        parse(&bad),
        Err(AbiError::BadCaptureLength { cap_len: 200, .. })
    ));
}

#[test]
fn parse_never_panics_on_arbitrary_bytes() {
    // A deterministic xorshift stream of records of every length, some with a
    // valid header prefix so the kind decoders are reached too.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000 {
        let len = (next() % 220) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 2 == 0 && len >= 3 {
            buf[0] = [msg_type::TRACE, msg_type::DROP, msg_type::POLICY_VERDICT][i % 3];
            buf[2] = EVENT_VERSION;
        }
        let _ = parse(&buf);
    }
}

#[test]
fn src_file_names() {
    assert_eq!(src_file::name(src_file::TEST_EMIT), Some("test_emit.bpf.c"));
    assert_eq!(src_file::name(0), None);
}

#[test]
fn trace_sock_round_trips() {
    let ev = TraceSockEvent {
        hdr: EventHdr {
            source: 7,
            ktime_ns: 99,
            ..EventHdr::new(msg_type::TRACE_SOCK, xlate_point::POST_DIRECTION_FWD)
        },
        src_label: 1234,
        dst_label: 5678,
        src_ip: [10, 200, 1, 2],
        dst_ip: [10, 200, 2, 2],
        dst_port: 8080,
        l4_proto: sock_l4::TCP,
        flags: 0,
        pad: 0,
        sock_cookie: 0xdead_beef,
        cgroup_id: 0,
    };
    let mut buf = Vec::new();
    ev.encode(&mut buf);
    assert_eq!(buf.len(), TraceSockEvent::SIZE);
    // The wire bytes of the addresses are network order, as in the kernel.
    assert_eq!(&buf[32..36], &[10, 200, 1, 2]);
    assert_eq!(u16::from_le_bytes([buf[40], buf[41]]), 8080);
    let RawEvent::TraceSock(got, p) = parse(&buf).unwrap() else {
        panic!("not a trace-sock event")
    };
    assert_eq!(got, ev);
    assert!(p.is_empty());
    assert_eq!(got.dst_addr(), std::net::Ipv4Addr::new(10, 200, 2, 2));
    assert!(matches!(
        parse(&buf[..TraceSockEvent::SIZE - 1]),
        Err(AbiError::Truncated {
            what: "trace sock event",
            ..
        })
    ));
}
