//! The wrapper every RPC goes through: a tracing span with the RPC's id, its latency, metrics, and
//! a guard that turns a panic into an `Internal` error instead of a dead daemon.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::FutureExt;
use tonic::{Request, Response, Status};
use tracing::{Instrument, debug, error, info_span};

static NEXT_RPC_ID: AtomicU64 = AtomicU64::new(1);

/// How many RPCs the daemon has begun since it started.
pub(crate) fn calls_so_far() -> u64 {
    NEXT_RPC_ID.load(Ordering::Relaxed) - 1
}

/// Runs one RPC handler inside its span.
pub(crate) async fn rpc<Req, Resp, Fut, E>(
    method: &'static str,
    request: Request<Req>,
    handler: impl FnOnce(Req) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Fut: Future<Output = Result<Resp, E>>,
    E: Into<Status>,
{
    let id = NEXT_RPC_ID.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("rpc", method, id);
    let started = Instant::now();
    let fut = AssertUnwindSafe(handler(request.into_inner())).catch_unwind();
    let result = async move {
        let result = match fut.await {
            Ok(result) => result.map_err(Into::into),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                error!(panic = %what, "handler panicked; this is a bug");
                Err(Status::internal(format!(
                    "{method}: internal error: {what}"
                )))
            }
        };
        let elapsed = started.elapsed();
        crate::metrics::observe_rpc(method, elapsed, result.as_ref().err().map(|s| s.code()));
        match &result {
            Ok(_) => debug!(elapsed_us = elapsed.as_micros() as u64, "ok"),
            Err(status) => debug!(
                elapsed_us = elapsed.as_micros() as u64,
                code = ?status.code(),
                message = status.message(),
                "failed"
            ),
        }
        result
    }
    .instrument(span)
    .await;
    result.map(Response::new)
}
