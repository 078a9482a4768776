//! The HTTP server behind the URLs: routing, token checks, protocol negotiation and the
//! SPDY or WebSocket upgrade, then the exec/attach/port-forward session.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

use crate::backend::StreamBackend;
use crate::config::StreamingConfig;
use crate::error::StreamingError;
use crate::protocol::{
    self, Codec, HEADER_ACCEPTED_PROTOCOL_VERSIONS, HEADER_PROTOCOL_VERSION,
    HEADER_WEBSOCKET_PROTOCOL, PORT_FORWARD_SPDY_TUNNEL, Version,
};
use crate::remotecommand::{self, Command};
use crate::requests::{AttachRequest, ExecRequest, PortForwardRequest, StreamOptions};
use crate::token_cache::{CachedRequest, TokenCache};
use crate::ws::WsByteStream;
use crate::{portforward, tls};

type HttpResponse = Response<Full<Bytes>>;
/// A response refusing an upgrade (boxed: it is large next to the success value).
type Refusal = Box<HttpResponse>;

/// The streaming server: mints single-use URLs for CRI `Exec`, `Attach` and `PortForward`
/// and serves them over SPDY/3.1 and WebSocket.
pub struct StreamingServer {
    addr: SocketAddr,
    base_url: String,
    ctx: Arc<Ctx>,
    accept: JoinHandle<()>,
}

struct Ctx {
    cache: TokenCache,
    backend: Arc<dyn StreamBackend>,
    config: StreamingConfig,
}

impl StreamingServer {
    /// Binds `config.addr` and starts serving on the current tokio runtime.
    pub async fn start(
        config: StreamingConfig,
        backend: Arc<dyn StreamBackend>,
    ) -> Result<StreamingServer, StreamingError> {
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| StreamingError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StreamingError::Bind {
                addr: config.addr,
                source,
            })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        let ctx = Arc::new(Ctx {
            cache: TokenCache::new(config.token_ttl),
            backend,
            config,
        });
        let accept = tokio::spawn(accept_loop(listener, tls, ctx.clone()));
        tracing::info!(%base_url, "streaming server listening");
        Ok(StreamingServer {
            addr,
            base_url,
            ctx,
            accept,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A URL for `req` (`<base>/exec/<token>`), valid once, for `token_ttl`.
    pub fn exec_url(&self, req: ExecRequest) -> Result<String, StreamingError> {
        req.validate()?;
        self.url("exec", CachedRequest::Exec(req))
    }

    /// A URL for `req` (`<base>/attach/<token>`), valid once, for `token_ttl`.
    pub fn attach_url(&self, req: AttachRequest) -> Result<String, StreamingError> {
        req.validate()?;
        self.url("attach", CachedRequest::Attach(req))
    }

    /// A URL for `req` (`<base>/portforward/<token>`), valid once, for `token_ttl`.
    pub fn port_forward_url(&self, req: PortForwardRequest) -> Result<String, StreamingError> {
        req.validate()?;
        self.url("portforward", CachedRequest::PortForward(req))
    }

    fn url(&self, kind: &str, req: CachedRequest) -> Result<String, StreamingError> {
        let token = self.ctx.cache.insert(req)?;
        Ok(format!("{}/{kind}/{token}", self.base_url))
    }

    /// Stops accepting connections; sessions already running go on to their end.
    pub fn shutdown(&self) {
        self.accept.abort();
    }
}

impl Drop for StreamingServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: Arc<Ctx>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "streaming accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, ctx) = (tls.clone(), ctx.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_connection(stream, ctx).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
                None => serve_connection::<TcpStream>(tcp, ctx).await,
            }
        });
    }
}

async fn serve_connection<S>(io: S, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(route(req, ctx)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "streaming connection ended with an error");
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn not_found() -> HttpResponse {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// `/<kind>/<token>` → (kind, token).
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (kind, token) = rest.split_once('/')?;
    (!token.is_empty() && !token.contains('/')).then_some((kind, token))
}

fn route(mut req: Request<Body>, ctx: Arc<Ctx>) -> HttpResponse {
    let Some((kind, token)) = parse_path(req.uri().path()) else {
        return not_found();
    };
    if !matches!(kind, "exec" | "attach" | "portforward") {
        return not_found();
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
    }
    let token = token.to_string();
    let Some(cached) = ctx.cache.consume(&token) else {
        return not_found();
    };
    match (kind, cached) {
        ("exec", CachedRequest::Exec(r)) => {
            let opts = r.options();
            let command = Command::Exec {
                container_id: r.container_id,
                cmd: r.cmd,
            };
            remote_command(&mut req, ctx, opts, command)
        }
        ("attach", CachedRequest::Attach(r)) => {
            let opts = r.options();
            remote_command(
                &mut req,
                ctx,
                opts,
                Command::Attach {
                    container_id: r.container_id,
                },
            )
        }
        ("portforward", CachedRequest::PortForward(r)) => port_forward(&mut req, ctx, r),
        _ => not_found(),
    }
}

/// `httpstream.Handshake` and the SPDY response upgrader: negotiate, then 101.
fn spdy_handshake(
    req: &mut Request<Body>,
    supported: &[&'static str],
) -> Result<(&'static str, HttpResponse, OnUpgrade), Refusal> {
    if !req.headers().contains_key(HEADER_PROTOCOL_VERSION) {
        let msg = format!(
            "unable to upgrade: header {HEADER_PROTOCOL_VERSION} does not exist in request"
        );
        return Err(Box::new(text(StatusCode::BAD_REQUEST, msg)));
    }
    let offered = protocol::header_list(req.headers(), HEADER_PROTOCOL_VERSION);
    if offered.is_empty() {
        let msg = format!("unable to upgrade: header {HEADER_PROTOCOL_VERSION} is empty");
        return Err(Box::new(text(StatusCode::BAD_REQUEST, msg)));
    }
    let Some(chosen) = protocol::negotiate(&offered, supported) else {
        let msg = format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
        );
        let mut resp = text(StatusCode::FORBIDDEN, msg);
        for p in supported {
            resp.headers_mut().append(
                HEADER_ACCEPTED_PROTOCOL_VERSIONS,
                HeaderValue::from_static(p),
            );
        }
        return Err(Box::new(resp));
    };
    if !protocol::is_spdy_upgrade(req.headers()) {
        let msg = "unable to upgrade: missing upgrade headers in request";
        return Err(Box::new(text(StatusCode::BAD_REQUEST, msg)));
    }
    let on_upgrade = hyper::upgrade::on(req);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::UPGRADE,
        HeaderValue::from_static(longshore_spdy::UPGRADE_PROTOCOL),
    );
    h.insert(HEADER_PROTOCOL_VERSION, HeaderValue::from_static(chosen));
    Ok((chosen, resp, on_upgrade))
}

/// The RFC 6455 server handshake with kubelet's subprotocol choice.
fn websocket_handshake<T: Copy>(
    req: &mut Request<Body>,
    supported: &[(&'static str, T)],
) -> Result<(&'static str, T, HttpResponse, OnUpgrade), Refusal> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key",
        )));
    };
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        let mut resp = text(StatusCode::BAD_REQUEST, "unsupported Sec-WebSocket-Version");
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return Err(Box::new(resp));
    }
    let Some((name, kind)) = protocol::negotiate_websocket(req.headers(), supported) else {
        let msg = "requested protocol(s) are not supported";
        return Err(Box::new(text(StatusCode::FORBIDDEN, msg)));
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !name.is_empty() {
        h.insert(HEADER_WEBSOCKET_PROTOCOL, HeaderValue::from_static(name));
    }
    Ok((name, kind, resp, on_upgrade))
}

async fn upgraded(on_upgrade: OnUpgrade) -> Option<TokioIo<Upgraded>> {
    match on_upgrade.await {
        Ok(io) => Some(TokioIo::new(io)),
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            None
        }
    }
}

async fn websocket(io: TokioIo<Upgraded>) -> WebSocketStream<TokioIo<Upgraded>> {
    WebSocketStream::from_raw_socket(io, WsRole::Server, None).await
}

fn remote_command(
    req: &mut Request<Body>,
    ctx: Arc<Ctx>,
    opts: StreamOptions,
    command: Command,
) -> HttpResponse {
    if protocol::is_websocket_request(req.headers()) {
        let (name, codec, resp, on_upgrade) =
            match websocket_handshake(req, protocol::WS_REMOTE_COMMAND_PROTOCOLS) {
                Ok(h) => h,
                Err(resp) => return *resp,
            };
        tokio::spawn(async move {
            let Some(io) = upgraded(on_upgrade).await else {
                return;
            };
            let ws = websocket(io).await;
            let backend = ctx.backend.as_ref();
            remotecommand::websocket::serve(ws, name, codec, opts, backend, command).await;
        });
        return resp;
    }
    let (name, resp, on_upgrade) =
        match spdy_handshake(req, protocol::SPDY_REMOTE_COMMAND_PROTOCOLS) {
            Ok(h) => h,
            Err(resp) => return *resp,
        };
    tokio::spawn(async move {
        let Some(io) = upgraded(on_upgrade).await else {
            return;
        };
        let version = Version::from_name(name);
        let timeout = ctx.config.stream_creation_timeout;
        let backend = ctx.backend.as_ref();
        remotecommand::spdy::serve(io, version, opts, timeout, backend, command).await;
    });
    resp
}

/// How a WebSocket port-forward is framed.
#[derive(Debug, Clone, Copy)]
enum PortForwardFraming {
    Channels(Codec),
    SpdyTunnel,
}

const WS_PORT_FORWARD: &[(&str, PortForwardFraming)] = &[
    (PORT_FORWARD_SPDY_TUNNEL, PortForwardFraming::SpdyTunnel),
    (
        protocol::STREAM_PROTOCOL_V4,
        PortForwardFraming::Channels(Codec::Binary),
    ),
    (
        protocol::STREAM_PROTOCOL_V4_BASE64,
        PortForwardFraming::Channels(Codec::Base64),
    ),
    ("", PortForwardFraming::Channels(Codec::Binary)),
];

fn port_forward(req: &mut Request<Body>, ctx: Arc<Ctx>, r: PortForwardRequest) -> HttpResponse {
    let pod: Arc<str> = r.pod_sandbox_id.into();
    let backend = ctx.backend.clone();
    let timeout = ctx.config.stream_creation_timeout;
    if protocol::is_websocket_request(req.headers()) {
        let (_, framing, resp, on_upgrade) = match websocket_handshake(req, WS_PORT_FORWARD) {
            Ok(h) => h,
            Err(resp) => return *resp,
        };
        tokio::spawn(async move {
            let Some(io) = upgraded(on_upgrade).await else {
                return;
            };
            let ws = websocket(io).await;
            match framing {
                PortForwardFraming::SpdyTunnel => {
                    portforward::spdy::serve(WsByteStream::new(ws), pod, backend, timeout).await
                }
                PortForwardFraming::Channels(codec) => {
                    portforward::websocket::serve(ws, codec, &r.ports, pod, backend).await
                }
            }
        });
        return resp;
    }
    let (_, resp, on_upgrade) = match spdy_handshake(req, protocol::SPDY_PORT_FORWARD_PROTOCOLS) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    tokio::spawn(async move {
        let Some(io) = upgraded(on_upgrade).await else {
            return;
        };
        portforward::spdy::serve(io, pod, backend, timeout).await;
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/exec/abc"), Some(("exec", "abc")));
        assert_eq!(
            parse_path("/portforward/x-_y"),
            Some(("portforward", "x-_y"))
        );
        assert_eq!(parse_path("/exec/"), None);
        assert_eq!(parse_path("/exec/a/b"), None);
        assert_eq!(parse_path("/exec"), None);
    }
}
