#!/usr/bin/env python3
"""An independent Hubble API client (grpcio's C core and Google's protobuf
runtime, as unlike tonic/prost as a client here can be) run against a
flow-exporter that replays a fixture file.

Checks: health for hubble.server.Observer, reflection listing the services,
ServerStatus figures, GetFlows answers whose official protobuf JSON mapping
(preserving proto field names) equals the recorded fixture lines, a
server-side filter, and InvalidArgument for first+follow.
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile


def compile_protos(proto_dir, out):
    import grpc_tools
    from grpc_tools import protoc

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = ["flow/flow.proto", "relay/relay.proto", "peer/peer.proto", "observer/observer.proto"]
    args = ["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + files) != 0:
        raise SystemExit("protoc failed")
    for pkg in ["flow", "relay", "peer", "observer"]:
        open(os.path.join(out, pkg, "__init__.py"), "a").close()
    sys.path.insert(0, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--proto-dir", required=True)
    a = ap.parse_args()

    out = tempfile.mkdtemp(prefix="hubble-interop-")
    # The generated modules are only needed while this runs.
    atexit.register(shutil.rmtree, out, True)
    compile_protos(a.proto_dir, out)
    import grpc
    from google.protobuf import json_format
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    from observer import observer_pb2, observer_pb2_grpc
    from flow import flow_pb2

    checks = 0
    ch = grpc.insecure_channel(a.server)

    h = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="hubble.server.Observer"))
    assert h.status == health_pb2.HealthCheckResponse.SERVING, h
    checks += 1

    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    resp = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    services = {s.name for s in resp.list_services_response.service}
    assert {"observer.Observer", "peer.Peer", "grpc.health.v1.Health"} <= services, services
    checks += 1

    obs = observer_pb2_grpc.ObserverStub(ch)
    st, call = obs.ServerStatus.with_call(observer_pb2.ServerStatusRequest())
    assert st.seen_flows == 12 and st.num_flows == 12 and st.max_flows == 8191, st
    assert not st.HasField("num_connected_nodes"), "an agent leaves node counts unset"
    headers = dict(call.initial_metadata())
    assert "hubble-server-version" in headers, headers
    checks += 1

    want = [json.loads(l) for l in open(a.fixture) if l.strip()]
    got = [
        json_format.MessageToDict(r, preserving_proto_field_name=True)
        for r in obs.GetFlows(observer_pb2.GetFlowsRequest(number=100))
    ]
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want):
        assert g == w, f"\nserved:   {json.dumps(g, sort_keys=True)}\nrecorded: {json.dumps(w, sort_keys=True)}"
    checks += 1

    req = observer_pb2.GetFlowsRequest(
        number=100, whitelist=[flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])]
    )
    uuids = [r.flow.uuid for r in obs.GetFlows(req)]
    assert uuids == ["f01", "f07", "f11"], uuids
    checks += 1

    try:
        list(obs.GetFlows(observer_pb2.GetFlowsRequest(first=True, follow=True)))
        raise AssertionError("first+follow accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    checks += 1

    print(f"interop: {checks} checks passed against {a.server}")


if __name__ == "__main__":
    main()
