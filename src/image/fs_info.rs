//! `ImageFsInfo`: bytes and inodes used by image content and layer snapshots.

use crate::server::{RpcError, blocking};

use crate::api::{
    FilesystemIdentifier, FilesystemUsage, ImageFsInfoRequest, ImageFsInfoResponse, UInt64Value,
};
use crate::daemon::Daemon;
use crate::state::now_nanos;

pub(super) async fn image_fs_info(
    d: &Daemon,
    _req: ImageFsInfoRequest,
) -> Result<ImageFsInfoResponse, RpcError> {
    let images = d.images.clone();
    let usage = blocking("ImageFsInfo", move || images.fs_info()).await??;
    Ok(ImageFsInfoResponse {
        image_filesystems: vec![FilesystemUsage {
            timestamp: now_nanos(),
            fs_id: Some(FilesystemIdentifier {
                mountpoint: usage.mountpoint.to_string_lossy().to_string(),
            }),
            used_bytes: Some(UInt64Value {
                value: usage.used_bytes,
            }),
            inodes_used: Some(UInt64Value {
                value: usage.inodes_used,
            }),
        }],
        container_filesystems: vec![],
    })
}
