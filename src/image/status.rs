//! `ImageStatus`: the image if present (no error when it is not, as CRI says).

use std::collections::HashMap;

use crate::server::RpcError;

use super::convert::cri_image;
use crate::api::{ImageStatusRequest, ImageStatusResponse};
use crate::daemon::Daemon;

pub(super) async fn image_status(
    d: &Daemon,
    req: ImageStatusRequest,
) -> Result<ImageStatusResponse, RpcError> {
    let name = req.image.map(|i| i.image).unwrap_or_default();
    if name.is_empty() {
        return Err(RpcError::invalid_argument("image.image is required"));
    }
    let Some(image) = d.images.resolve(&name)? else {
        return Ok(ImageStatusResponse {
            image: None,
            info: HashMap::new(),
        });
    };
    let info = if req.verbose {
        let info = serde_json::json!({
            "chainIDs": image.chain_ids,
            "diffIDs": image.diff_ids,
            "manifestDigest": image.manifest_digest,
            "platform": image.platform,
            "created": image.created,
            "config": {
                "user": image.config.user,
                "env": image.config.env,
                "entrypoint": image.config.entrypoint,
                "cmd": image.config.cmd,
                "workingDir": image.config.working_dir,
                "stopSignal": image.config.stop_signal,
            },
        });
        HashMap::from([("info".to_string(), info.to_string())])
    } else {
        HashMap::new()
    };
    Ok(ImageStatusResponse {
        image: Some(cri_image(&image)),
        info,
    })
}
