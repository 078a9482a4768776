//! The one way handlers run blocking work (file systems, cgroupfs, mounts, the database, the
//! image store): on tokio's blocking pool, so the async worker threads stay free for List and
//! Status calls even when disks are slow. A panic or cancellation of the work becomes an
//! `Internal` error naming what was being done.

use super::RpcError;

/// Runs `work` on the blocking pool and waits for it; `what` names it in errors. Work that
/// can fail returns its `Result`, which the caller unwraps with a second `?` (or adds context).
pub async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RpcError::internal(format!("{what}: the task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_and_panics_come_back() {
        let ok = blocking("adding", || 1 + 1).await;
        assert_eq!(ok, Ok(2));
        let err = blocking("refusing", || {
            Err::<(), _>(RpcError::invalid_argument("no"))
        });
        assert_eq!(err.await.unwrap().unwrap_err().message(), "no");
        let panicked = blocking("panicking", || -> u8 { panic!("boom") });
        let e = panicked.await.unwrap_err();
        assert_eq!(e.kind(), longshore_error::Kind::Internal);
        assert!(e.message().starts_with("panicking: the task failed"), "{e}");
    }
}
