//! Opening connections: the SPDY upgrade (as client-go's `SpdyRoundTripper`) and the WebSocket
//! handshake.

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use longshore_spdy::{Incoming, Role, Session};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::ClientError;
use crate::protocol::{HEADER_PROTOCOL_VERSION, HEADER_WEBSOCKET_PROTOCOL};

/// `host:port` and path of an `http://` URL.
pub(crate) fn split_url(url: &str) -> Result<(&str, &str), ClientError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::BadUrl(url.into()))?;
    let (authority, _) = rest
        .split_once('/')
        .ok_or_else(|| ClientError::BadUrl(url.into()))?;
    let path = &rest[authority.len()..];
    if authority.is_empty() {
        return Err(ClientError::BadUrl(url.into()));
    }
    Ok((authority, path))
}

async fn dial(authority: &str) -> Result<TcpStream, ClientError> {
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// POSTs an upgrade to SPDY/3.1 offering `protocols` (one `X-Stream-Protocol-Version` header
/// each, as client-go) and starts a client session. Returns the negotiated protocol.
pub(crate) async fn spdy(
    url: &str,
    protocols: &[&str],
) -> Result<(Session, Incoming, String), ClientError> {
    let (authority, path) = split_url(url)?;
    let tcp = dial(authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "client connection ended");
        }
    });
    let mut builder = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, longshore_spdy::UPGRADE_PROTOCOL);
    for p in protocols {
        builder = builder.header(HEADER_PROTOCOL_VERSION, *p);
    }
    let req = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        return Err(ClientError::UpgradeRefused { status, body });
    }
    let upgrade_ok = resp
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("spdy/3.1"));
    if !upgrade_ok {
        return Err(ClientError::Protocol("missing Upgrade: SPDY/3.1".into()));
    }
    let chosen = resp
        .headers()
        .get(HEADER_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let (session, incoming) = Session::new(TokioIo::new(upgraded), Role::Client);
    Ok((session, incoming, chosen))
}

/// Opens a WebSocket to `url` (as `ws://`) asking for `protocol`; checks the server agreed.
pub(crate) async fn websocket(
    url: &str,
    protocol: &str,
) -> Result<WebSocketStream<TcpStream>, ClientError> {
    let (authority, _) = split_url(url)?;
    let tcp = dial(authority).await?;
    let ws_url = format!("ws://{}", &url["http://".len()..]);
    let mut req = ws_url
        .into_client_request()
        .map_err(|e| ClientError::WebSocket(e.to_string()))?;
    let value =
        HeaderValue::from_str(protocol).map_err(|e| ClientError::WebSocket(e.to_string()))?;
    req.headers_mut().insert(HEADER_WEBSOCKET_PROTOCOL, value);
    let (ws, resp) = match tokio_tungstenite::client_async(req, tcp).await {
        Ok(ok) => ok,
        Err(WsError::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(ClientError::UpgradeRefused {
                status,
                body: body.into_owned(),
            });
        }
        Err(e) => return Err(ClientError::WebSocket(e.to_string())),
    };
    let chosen = resp
        .headers()
        .get(HEADER_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    if chosen != Some(protocol) {
        return Err(ClientError::Protocol(chosen.unwrap_or("").to_string()));
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_split() {
        assert_eq!(
            split_url("http://127.0.0.1:80/exec/t").unwrap(),
            ("127.0.0.1:80", "/exec/t")
        );
        assert_eq!(split_url("http://[::1]:9/x").unwrap(), ("[::1]:9", "/x"));
        assert!(split_url("https://h/x").is_err());
        assert!(split_url("http://h").is_err());
    }
}
