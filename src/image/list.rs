//! `ListImages` and `StreamImages`.

use tonic::Status;

use super::convert::{cri_image, status_from};
use crate::api::{
    self, ImageFilter, ListImagesRequest, ListImagesResponse, StreamImagesRequest,
    StreamImagesResponse,
};
use crate::daemon::Daemon;
use crate::server::RpcStream;

const STREAM_CHUNK: usize = 512;

pub(super) async fn list_images(
    d: &Daemon,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, Status> {
    Ok(ListImagesResponse {
        images: matching(d, req.filter.as_ref())?,
    })
}

pub(super) async fn stream_images(
    d: &Daemon,
    req: StreamImagesRequest,
) -> Result<RpcStream<StreamImagesResponse>, Status> {
    let images = matching(d, req.filter.as_ref())?;
    let chunks: Vec<Result<StreamImagesResponse, Status>> = images
        .chunks(STREAM_CHUNK)
        .map(|c| Ok(StreamImagesResponse { images: c.to_vec() }))
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Every image, or the one the filter names.
fn matching(d: &Daemon, filter: Option<&ImageFilter>) -> Result<Vec<api::Image>, Status> {
    let wanted = filter
        .and_then(|f| f.image.as_ref())
        .map(|i| i.image.as_str())
        .unwrap_or("");
    if !wanted.is_empty() {
        return Ok(d
            .images
            .resolve(wanted)
            .map_err(status_from)?
            .iter()
            .map(cri_image)
            .collect());
    }
    Ok(d.images
        .list()
        .map_err(status_from)?
        .iter()
        .map(cri_image)
        .collect())
}
