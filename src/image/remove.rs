//! `RemoveImage`: by id or digest removes the image; by tag removes only that tag while others
//! remain. Removing an image that is not there succeeds, as CRI says.

use crate::server::RpcError;
use tracing::info;

use crate::api::{RemoveImageRequest, RemoveImageResponse};
use crate::daemon::Daemon;

pub(super) async fn remove_image(
    d: &Daemon,
    req: RemoveImageRequest,
) -> Result<RemoveImageResponse, RpcError> {
    let name = req.image.map(|i| i.image).unwrap_or_default();
    if name.is_empty() {
        return Err(RpcError::invalid_argument("image.image is required"));
    }
    let removed = d.images.remove(&name)?;
    info!(image = %name, removed, "remove image");
    Ok(RemoveImageResponse {})
}
