//! ImageService: pull, list, status, remove, filesystem usage. One file per RPC.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::image_service_server::ImageService;
use crate::api::*;
use crate::daemon::Daemon;
use crate::runtime::{RpcStream, unimplemented};
use crate::server::rpc;

/// The ImageService as tonic serves it.
pub struct ImageApi {
    #[allow(dead_code)]
    daemon: Arc<Daemon>,
}

impl ImageApi {
    /// Serves ImageService from `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        ImageApi { daemon }
    }
}

macro_rules! not_implemented {
    ($name:literal, $req:ident) => {
        rpc($name, $req, |_r| async { unimplemented($name) }).await
    };
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        not_implemented!("ListImages", req)
    }

    type StreamImagesStream = RpcStream<StreamImagesResponse>;

    async fn stream_images(
        &self,
        req: Request<StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        not_implemented!("StreamImages", req)
    }

    async fn image_status(
        &self,
        req: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        not_implemented!("ImageStatus", req)
    }

    async fn pull_image(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        not_implemented!("PullImage", req)
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        not_implemented!("RemoveImage", req)
    }

    async fn image_fs_info(
        &self,
        req: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        not_implemented!("ImageFsInfo", req)
    }
}
