//! The services every Hubble server answers besides its API: gRPC health
//! (SERVING for `hubble.server.Observer`, which `hubble status` checks) and
//! server reflection v1 and v1alpha (`hubble reflect`) over the Hubble and
//! health descriptors. The exporter and the relay both start from here.

use tonic::transport::Server;
use tonic::transport::server::Router;

/// The health service name the Hubble CLI checks.
pub const HEALTH_SERVICE: &str = "hubble.server.Observer";

/// Adds health (SERVING for [`HEALTH_SERVICE`] and the server as a whole)
/// and reflection to `builder`; add the API services to the returned router.
pub async fn standard_services(
    mut builder: Server,
) -> Result<Router, tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection().build_v1()?;
    let v1alpha = reflection().build_v1alpha()?;
    Ok(builder
        .add_service(health)
        .add_service(v1)
        .add_service(v1alpha))
}
