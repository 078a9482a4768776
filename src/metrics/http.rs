//! `GET /metrics` over plain HTTP/1.1 (hyper), for Prometheus to scrape. Off unless
//! `[metrics] address` is set. It has no authentication, so it belongs on loopback; another
//! address is served, with a warning in the log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::daemon::Daemon;
use crate::state::{ContainerState, PodState};

/// The one path served.
const METRICS_PATH: &str = "/metrics";
/// What Prometheus expects for the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A client that has not sent its request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `address` and serves `/metrics` until the returned task is aborted. Binding errors
/// are returned (a configured endpoint that cannot listen should stop the daemon from starting).
pub async fn serve(address: SocketAddr, daemon: Arc<Daemon>) -> anyhow::Result<JoinHandle<()>> {
    if !address.ip().is_loopback() {
        warn!(%address, "metrics are served without authentication on a non-loopback address");
    }
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("[metrics] address {address}"))?;
    info!(address = %listener.local_addr().unwrap_or(address), "serving Prometheus metrics on /metrics");
    Ok(tokio::spawn(accept_loop(listener, daemon)))
}

async fn accept_loop(listener: TcpListener, daemon: Arc<Daemon>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, daemon.clone()));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "metrics connection ended");
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    daemon: Arc<Daemon>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != METRICS_PATH {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are on /metrics\n",
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let pods = daemon
        .all_pods()
        .iter()
        .filter(|p| p.state() == PodState::Ready)
        .count();
    let containers = daemon
        .all_containers()
        .iter()
        .filter(|c| c.state() == ContainerState::Running)
        .count();
    let text = crate::metrics::render(pods, containers);
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(OPENMETRICS),
    );
    Ok(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
