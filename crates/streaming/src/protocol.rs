//! Protocol names and negotiation, as kubelet and apimachinery's `httpstream` do it.

use http::HeaderMap;

/// Request and response header naming the remotecommand/port-forward subprotocol over SPDY.
pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
/// Response header listing what the server accepts when negotiation fails.
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";
/// WebSocket subprotocol header.
pub const HEADER_WEBSOCKET_PROTOCOL: &str = "Sec-WebSocket-Protocol";

/// remotecommand v5: v4 plus the WebSocket stdin close signal.
pub const STREAM_PROTOCOL_V5: &str = "v5.channel.k8s.io";
/// remotecommand v4: JSON `metav1.Status` on the error stream.
pub const STREAM_PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// remotecommand v3: adds the resize stream.
pub const STREAM_PROTOCOL_V3: &str = "v3.channel.k8s.io";
/// remotecommand v2: error stream carries text.
pub const STREAM_PROTOCOL_V2: &str = "v2.channel.k8s.io";
/// remotecommand v1 (also the plain WebSocket channel protocol).
pub const STREAM_PROTOCOL_V1: &str = "channel.k8s.io";
/// WebSocket v4 with base64 text frames.
pub const STREAM_PROTOCOL_V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// WebSocket v1 with base64 text frames.
pub const STREAM_PROTOCOL_V1_BASE64: &str = "base64.channel.k8s.io";
/// Port-forward over SPDY.
pub const PORT_FORWARD_PROTOCOL_V1: &str = "portforward.k8s.io";
/// Port-forward as SPDY tunnelled through WebSocket binary messages (client-go's
/// `NewSPDYOverWebsocketDialer`, what `crictl port-forward --transport websocket` uses).
pub const PORT_FORWARD_SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// Stream type header and its values.
pub mod stream_type {
    /// The header name (`v1.StreamType`); SPDY carries it lowercased.
    pub const HEADER: &str = "streamType";
    /// Final status / error messages.
    pub const ERROR: &str = "error";
    /// Client input.
    pub const STDIN: &str = "stdin";
    /// Process output.
    pub const STDOUT: &str = "stdout";
    /// Process error output.
    pub const STDERR: &str = "stderr";
    /// Terminal size events.
    pub const RESIZE: &str = "resize";
    /// Port-forward payload.
    pub const DATA: &str = "data";
}

/// Port-forward stream headers.
pub mod port_header {
    /// The forwarded port (`v1.PortHeader`).
    pub const PORT: &str = "port";
    /// Pairs a data and an error stream (`v1.PortForwardRequestIDHeader`).
    pub const REQUEST_ID: &str = "requestID";
}

/// The remotecommand protocol versions, in the order the server prefers none of them (the
/// client's order decides, as in `httpstream.Handshake`).
pub(crate) const SPDY_REMOTE_COMMAND_PROTOCOLS: &[&str] = &[
    STREAM_PROTOCOL_V5,
    STREAM_PROTOCOL_V4,
    STREAM_PROTOCOL_V3,
    STREAM_PROTOCOL_V2,
    STREAM_PROTOCOL_V1,
];

/// Port-forward protocols over SPDY.
pub(crate) const SPDY_PORT_FORWARD_PROTOCOLS: &[&str] = &[PORT_FORWARD_PROTOCOL_V1];

/// A remotecommand protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl Version {
    /// The version a negotiated protocol name stands for (unknown and empty mean v1).
    pub fn from_name(name: &str) -> Version {
        match name {
            STREAM_PROTOCOL_V5 => Version::V5,
            STREAM_PROTOCOL_V4 | STREAM_PROTOCOL_V4_BASE64 => Version::V4,
            STREAM_PROTOCOL_V3 => Version::V3,
            STREAM_PROTOCOL_V2 => Version::V2,
            _ => Version::V1,
        }
    }

    /// v4+ writes a JSON status.
    pub fn json_status(self) -> bool {
        self >= Version::V4
    }

    /// v3+ has a resize stream.
    pub fn resize(self) -> bool {
        self >= Version::V3
    }
}

/// How WebSocket channel frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Binary messages: channel byte, then data.
    Binary,
    /// Text messages: ASCII digit channel, then base64 data.
    Base64,
}

/// WebSocket subprotocols for exec/attach: (name, codec). `""` is a client that offered none.
pub(crate) const WS_REMOTE_COMMAND_PROTOCOLS: &[(&str, Codec)] = &[
    (STREAM_PROTOCOL_V5, Codec::Binary),
    (STREAM_PROTOCOL_V4, Codec::Binary),
    (STREAM_PROTOCOL_V4_BASE64, Codec::Base64),
    (STREAM_PROTOCOL_V1, Codec::Binary),
    (STREAM_PROTOCOL_V1_BASE64, Codec::Base64),
    ("", Codec::Binary),
];

/// All values of header `name`, split on commas and trimmed (`commaSeparatedHeaderValues`).
pub(crate) fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// The first client protocol the server also supports.
pub(crate) fn negotiate<'a>(client: &[String], server: &[&'a str]) -> Option<&'a str> {
    client
        .iter()
        .find_map(|c| server.iter().find(|s| **s == c.as_str()).copied())
}

/// True when some `Connection` header mentions `upgrade` (`httpstream.IsUpgradeRequest`).
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("upgrade"))
}

/// True for `Upgrade: websocket` upgrade requests (`wsstream.IsWebSocketRequest`).
pub(crate) fn is_websocket_request(headers: &HeaderMap) -> bool {
    let websocket = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    websocket && is_upgrade_request(headers)
}

/// True when `Upgrade` asks for SPDY/3.1.
pub(crate) fn is_spdy_upgrade(headers: &HeaderMap) -> bool {
    let spdy = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("spdy/3.1"));
    spdy && is_upgrade_request(headers)
}

/// Picks a WebSocket subprotocol the way `x/net/websocket` does for kubelet: the first offered
/// one the server knows; a client offering none gets `""`.
pub(crate) fn negotiate_websocket<T: Copy>(
    headers: &HeaderMap,
    supported: &[(&'static str, T)],
) -> Option<(&'static str, T)> {
    let mut offered = header_list(headers, HEADER_WEBSOCKET_PROTOCOL);
    if offered.is_empty() {
        offered.push(String::new());
    }
    offered.iter().find_map(|o| {
        supported
            .iter()
            .find(|(name, _)| *name == o.as_str())
            .copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn client_order_wins() {
        let h = headers(&[
            ("x-stream-protocol-version", "v5.channel.k8s.io"),
            (
                "x-stream-protocol-version",
                "v4.channel.k8s.io, v3.channel.k8s.io",
            ),
        ]);
        let offered = header_list(&h, HEADER_PROTOCOL_VERSION);
        assert_eq!(
            offered,
            vec![STREAM_PROTOCOL_V5, STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V3]
        );
        assert_eq!(
            negotiate(&offered, SPDY_REMOTE_COMMAND_PROTOCOLS),
            Some(STREAM_PROTOCOL_V5)
        );
        assert_eq!(
            negotiate(&offered[1..], &[STREAM_PROTOCOL_V3, STREAM_PROTOCOL_V4]),
            Some(STREAM_PROTOCOL_V4)
        );
        assert_eq!(
            negotiate(&["v9".into()], SPDY_REMOTE_COMMAND_PROTOCOLS),
            None
        );
    }

    #[test]
    fn upgrade_detection() {
        let spdy = headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]);
        assert!(is_spdy_upgrade(&spdy) && !is_websocket_request(&spdy));
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_websocket_request(&ws) && !is_spdy_upgrade(&ws));
        assert!(!is_upgrade_request(&headers(&[("upgrade", "websocket")])));
    }

    #[test]
    fn websocket_negotiation() {
        let h = headers(&[(
            "sec-websocket-protocol",
            "v9.channel.k8s.io, v4.base64.channel.k8s.io",
        )]);
        assert_eq!(
            negotiate_websocket(&h, WS_REMOTE_COMMAND_PROTOCOLS),
            Some((STREAM_PROTOCOL_V4_BASE64, Codec::Base64))
        );
        assert_eq!(
            negotiate_websocket(&HeaderMap::new(), WS_REMOTE_COMMAND_PROTOCOLS),
            Some(("", Codec::Binary))
        );
        let h = headers(&[("sec-websocket-protocol", "v9.channel.k8s.io")]);
        assert_eq!(negotiate_websocket(&h, WS_REMOTE_COMMAND_PROTOCOLS), None);
    }

    #[test]
    fn versions() {
        assert!(Version::from_name(STREAM_PROTOCOL_V5).json_status());
        assert!(Version::from_name(STREAM_PROTOCOL_V4_BASE64).json_status());
        assert!(!Version::from_name(STREAM_PROTOCOL_V3).json_status());
        assert!(Version::from_name(STREAM_PROTOCOL_V3).resize());
        assert!(!Version::from_name(STREAM_PROTOCOL_V2).resize());
        assert_eq!(Version::from_name(""), Version::V1);
    }
}
