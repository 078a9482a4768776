//! `PullImage`: fetch from the registry (through configured mirrors) into the content store and
//! shared layer snapshots; returns the image id.

use crate::server::RpcError;
use longshore_image::Credentials;
use tracing::info;

use crate::api::{PullImageRequest, PullImageResponse};
use crate::daemon::Daemon;

pub(super) async fn pull_image(
    d: &Daemon,
    req: PullImageRequest,
) -> Result<PullImageResponse, RpcError> {
    let name = req.image.map(|i| i.image).unwrap_or_default();
    if name.is_empty() {
        return Err(RpcError::invalid_argument("image.image is required"));
    }
    let credentials = req.auth.map(|a| Credentials {
        username: a.username,
        password: a.password,
        auth: a.auth,
        server_address: a.server_address,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    });
    let started = std::time::Instant::now();
    let image = d.images.pull(&name, credentials).await?;
    crate::metrics::observe_pull(started.elapsed(), image.size);
    info!(image = %name, id = %image.id, elapsed_ms = started.elapsed().as_millis() as u64, "image pulled");
    Ok(PullImageResponse {
        image_ref: image.id,
    })
}
