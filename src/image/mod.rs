//! ImageService: pull, list, status, remove, filesystem usage. One file per RPC.

mod convert;
mod fs_info;
mod list;
mod pull;
mod remove;
mod status;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::image_service_server::ImageService;
use crate::api::*;
use crate::daemon::Daemon;
use crate::server::RpcStream;
use crate::server::rpc;

/// The ImageService as tonic serves it.
pub struct ImageApi {
    daemon: Arc<Daemon>,
}

impl ImageApi {
    /// Serves ImageService from `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        ImageApi { daemon }
    }
}

macro_rules! route {
    ($self:ident, $name:literal, $req:ident, $handler:path) => {{
        let d = $self.daemon.clone();
        rpc($name, $req, move |r| async move { $handler(&d, r).await }).await
    }};
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        route!(self, "ListImages", req, list::list_images)
    }

    type StreamImagesStream = RpcStream<StreamImagesResponse>;

    async fn stream_images(
        &self,
        req: Request<StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        route!(self, "StreamImages", req, list::stream_images)
    }

    async fn image_status(
        &self,
        req: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        route!(self, "ImageStatus", req, status::image_status)
    }

    async fn pull_image(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        route!(self, "PullImage", req, pull::pull_image)
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        route!(self, "RemoveImage", req, remove::remove_image)
    }

    async fn image_fs_info(
        &self,
        req: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        route!(self, "ImageFsInfo", req, fs_info::image_fs_info)
    }
}
