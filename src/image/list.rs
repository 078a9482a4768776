//! `ListImages` and `StreamImages`.

use crate::server::RpcError;

use super::convert::cri_image;
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
) -> Result<ListImagesResponse, RpcError> {
    Ok(ListImagesResponse {
        images: matching(d, req.filter.as_ref())?,
    })
}

pub(super) async fn stream_images(
    d: &Daemon,
    req: StreamImagesRequest,
) -> Result<RpcStream<StreamImagesResponse>, RpcError> {
    let images = matching(d, req.filter.as_ref())?;
    let chunks: Vec<Result<StreamImagesResponse, tonic::Status>> = images
        .chunks(STREAM_CHUNK)
        .map(|c| Ok(StreamImagesResponse { images: c.to_vec() }))
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Every image, or the one the filter names.
fn matching(d: &Daemon, filter: Option<&ImageFilter>) -> Result<Vec<api::Image>, RpcError> {
    let wanted = filter
        .and_then(|f| f.image.as_ref())
        .map(|i| i.image.as_str())
        .unwrap_or("");
    if !wanted.is_empty() {
        return Ok(d.images.resolve(wanted)?.iter().map(cri_image).collect());
    }
    Ok(d.images.list()?.iter().map(cri_image).collect())
}
