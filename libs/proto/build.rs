//! Compiles `proto/` with protox (no system protoc) into prost messages, tonic services and
//! pbjson serde impls (the canonical proto3 JSON mapping).

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "bashu/story/v1/story.proto",
        "bashu/story/v1/events.proto",
        "bashu/alert/v1/alert.proto",
        "bashu/registry/v1/registry.proto",
        "bashu/ingest/v1/ingest_service.proto",
        "bashu/admin/v1/registry_service.proto",
        "bashu/alert/v1/alert_service.proto",
        "bashu/admin/v1/alert_board_service.proto",
        "bashu/admin/v1/takedown_service.proto",
        "bashu/admin/v1/credential_service.proto",
        "bashu/moderation/v1/review.proto",
        "bashu/admin/v1/moderation_rules_service.proto",
        "bashu/admin/v1/audit.proto",
        "bashu/admin/v1/operations_service.proto",
        "bashu/pool/v1/pool_service.proto",
        "bashu/coverage/v1/coverage.proto",
        "bashu/coverage/v1/coverage_service.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed=build.rs");

    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_bytes = descriptors.encode_to_vec();
    fs::write(out_dir.join("bashu_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .codec_path("crate::codec::GrpcCodec")
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        // Answers show every field, `"valid": false` and empty lists included.
        .emit_fields()
        .build(&[".bashu"])?;
    Ok(())
}
