//! Generates the Hubble v1 API from `proto/`: prost messages, tonic client and
//! server (behind the `grpc` feature), a file descriptor set (for gRPC reflection), and serde impls in
//! Hubble's jsonpb form (proto field names, enum names, RFC 3339 timestamps).

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/flow/flow.proto",
    "proto/relay/relay.proto",
    "proto/peer/peer.proto",
    "proto/observer/observer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptors = out.join("hubble_descriptor.bin");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The generated clients and servers need tonic's transport (tokio,
        // hyper): they compile only with this crate's `grpc` feature, so the
        // messages alone stay runtime-free for flow-filter and flow-parser.
        .server_mod_attribute(".", "#[cfg(feature = \"grpc\")]")
        .client_mod_attribute(".", "#[cfg(feature = \"grpc\")]")
        .file_descriptor_set_path(&descriptors)
        // Well-known types come from pbjson-types so that they serialise like
        // Go's protojson (RFC 3339 timestamps, wrappers as plain values).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "crate::wkt")
        .compile_protos(PROTOS, &["proto"])?;

    let set = std::fs::read(&descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&set)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        // protojson prints a oneof at its declaration position; pbjson puts
        // oneofs last. These two start with their oneof: see src/json.rs.
        .exclude([".observer.GetFlowsResponse", ".observer.ExportEvent"])
        .build(&[".flow", ".observer", ".peer", ".relay"])?;
    Ok(())
}
