//! A call that outlives its client's deadline (`grpc-timeout`) is answered DEADLINE_EXCEEDED.
//!
//! tonic enforces `grpc-timeout` itself, outside every layer a server adds, and answers such a
//! call CANCELLED ("Timeout expired"). Go's gRPC server — containerd's, CRI-O's — answers
//! DEADLINE_EXCEEDED, and clients check for it (critest's timeout specs, kubelet's retries). This
//! layer sits inside tonic's and runs the call with the same deadline less [`MARGIN`], so it
//! answers first, with the code the gRPC spec gives for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::codegen::http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

/// How much earlier than tonic's timer this layer's fires.
const MARGIN: Duration = Duration::from_millis(2);

/// The layer: `Server::builder().layer(DeadlineLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// The service [`DeadlineLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(parse_timeout);
        let call = self.inner.call(request);
        Box::pin(async move {
            let Some(timeout) = timeout else {
                return call.await;
            };
            match tokio::time::timeout(timeout.saturating_sub(MARGIN), call).await {
                Ok(answer) => answer,
                Err(_) => {
                    let status = tonic::Status::deadline_exceeded(format!(
                        "the call's deadline ({timeout:?}) passed before it finished"
                    ));
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), as the gRPC HTTP/2 protocol
/// defines it; anything else is ignored, as tonic does.
fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Duration> {
        parse_timeout(&HeaderValue::from_str(text).ok()?)
    }

    #[test]
    fn timeouts_parse_as_the_protocol_defines_them() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "10s", "-1S", "1.5S", "10"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
