//! A CRI client over a unix socket, for the end-to-end tests, the benchmark tool and any Rust
//! program that wants to drive a CRI runtime (Longshore, containerd or CRI-O alike).

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::v1::image_service_client::ImageServiceClient;
use crate::v1::runtime_service_client::RuntimeServiceClient;

/// Both CRI services over one connection.
#[derive(Clone)]
pub struct CriClient {
    /// RuntimeService.
    pub runtime: RuntimeServiceClient<Channel>,
    /// ImageService.
    pub image: ImageServiceClient<Channel>,
}

/// Largest message the client accepts or sends (kubelet's limit).
const MAX_MESSAGE: usize = 16 << 20;

impl CriClient {
    /// Connects to a CRI socket (`/run/longshore/longshore.sock`, or `unix:///...`).
    pub async fn connect(socket: impl AsRef<Path>) -> Result<CriClient, tonic::transport::Error> {
        let path: PathBuf = {
            let s = socket.as_ref().to_string_lossy();
            PathBuf::from(s.strip_prefix("unix://").unwrap_or(&s).to_string())
        };
        // The URI is ignored: every connection goes to the socket.
        let channel = Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await?;
        Ok(CriClient {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            image: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        })
    }
}
