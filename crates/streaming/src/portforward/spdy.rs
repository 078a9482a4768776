//! port-forward over SPDY, as kubelet's `httpStreamHandler`: streams carry `port`,
//! `streamType` (`data` or `error`) and `requestID`; each complete pair is forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longshore_spdy::{Headers, IncomingStream, Role, Session, Stream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::error_response;
use crate::backend::StreamBackend;
use crate::protocol::{port_header, stream_type};

#[derive(Default)]
struct Pair {
    port: u16,
    data: Option<Stream>,
    error: Option<Stream>,
}

type Pairs = Arc<Mutex<HashMap<String, Pair>>>;

fn lock(pairs: &Pairs) -> std::sync::MutexGuard<'_, HashMap<String, Pair>> {
    pairs.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves port-forward streams on `io` until the client closes the connection.
pub(crate) async fn serve<T>(
    io: T,
    pod: Arc<str>,
    backend: Arc<dyn StreamBackend>,
    creation_timeout: Duration,
) where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (session, mut incoming) = Session::new(io, Role::Server);
    let pairs: Pairs = Arc::default();
    while let Some(stream) = incoming.next().await {
        handle_stream(stream, &pairs, &pod, &backend, creation_timeout);
    }
    session.close().await;
}

/// The port and type a stream announces, if valid.
fn validate(headers: &Headers) -> Result<(u16, bool), String> {
    let port = headers
        .get(port_header::PORT)
        .ok_or_else(|| format!("{:?} header is required", port_header::PORT))?;
    let port: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if port == 0 {
        return Err("port \"0\" must be > 0".into());
    }
    match headers.get(stream_type::HEADER) {
        Some(stream_type::DATA) => Ok((port, true)),
        Some(stream_type::ERROR) => Ok((port, false)),
        Some(other) => Err(format!("invalid stream type {other:?}")),
        None => Err(format!("{:?} header is required", stream_type::HEADER)),
    }
}

/// The pairing key; old clients without `requestID` get kubelet's best-effort guess.
fn request_id(stream: &IncomingStream, is_data: bool) -> String {
    match stream.headers().get(port_header::REQUEST_ID) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if is_data => stream.id().saturating_sub(2).to_string(),
        _ => stream.id().to_string(),
    }
}

fn handle_stream(
    stream: IncomingStream,
    pairs: &Pairs,
    pod: &Arc<str>,
    backend: &Arc<dyn StreamBackend>,
    creation_timeout: Duration,
) {
    let (port, is_data) = match validate(stream.headers()) {
        Ok(v) => v,
        Err(reason) => {
            tracing::warn!(%reason, "rejecting port-forward stream");
            stream.refuse();
            return;
        }
    };
    let id = request_id(&stream, is_data);
    let stream = stream.accept();
    let mut map = lock(pairs);
    let created = !map.contains_key(&id);
    let pair = map.entry(id.clone()).or_default();
    pair.port = port;
    let slot = if is_data {
        &mut pair.data
    } else {
        &mut pair.error
    };
    if slot.is_some() {
        let what = if is_data { "data" } else { "error" };
        let msg =
            format!("error processing stream for request {id}: {what} stream already assigned");
        tracing::warn!("{msg}");
        if let Some(error) = pair.error.take() {
            tokio::spawn(write_and_close(error, msg.into_bytes()));
        }
        return;
    }
    *slot = Some(stream);
    if pair.data.is_some() && pair.error.is_some() {
        if let Some(pair) = map.remove(&id) {
            tokio::spawn(forward(pair, pod.clone(), backend.clone()));
        }
    } else if created {
        tokio::spawn(expire(pairs.clone(), id, creation_timeout));
    }
}

/// Drops a pair whose second stream never came, telling the client on its error stream.
async fn expire(pairs: Pairs, id: String, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    let Some(pair) = lock(&pairs).remove(&id) else {
        return;
    };
    let msg = format!("timed out waiting for streams of request {id}");
    tracing::warn!("{msg}");
    if let Some(error) = pair.error {
        write_and_close(error, msg.into_bytes()).await;
    }
}

async fn write_and_close(mut stream: Stream, bytes: Vec<u8>) {
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

async fn forward(pair: Pair, pod: Arc<str>, backend: Arc<dyn StreamBackend>) {
    let (Some(data), Some(error)) = (pair.data, pair.error) else {
        return;
    };
    let port = pair.port;
    let result = backend.port_forward(&pod, port, Box::new(data)).await;
    let Err(e) = result else {
        write_and_close(error, Vec::new()).await;
        return;
    };
    tracing::warn!(port, pod = &*pod, error = %e, "port-forward failed");
    let mut json = serde_json::to_vec(&error_response(port, &pod, &e)).unwrap_or_default();
    json.push(b'\n');
    write_and_close(error, json).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_header_validation() {
        let mut h = Headers::new();
        assert!(validate(&h).is_err());
        h.set("port", "8080");
        assert!(validate(&h).is_err());
        h.set("streamType", "data");
        assert_eq!(validate(&h), Ok((8080, true)));
        h.set("streamType", "error");
        assert_eq!(validate(&h), Ok((8080, false)));
        h.set("streamType", "stdout");
        assert!(validate(&h).is_err());
        h.set("streamType", "data").set("port", "0");
        assert!(validate(&h).is_err());
        h.set("port", "70000");
        assert!(validate(&h).is_err());
    }
}
