//! port-forward: over SPDY (one data + one error stream per forwarded connection, paired by
//! `requestID`), over SPDY tunnelled in WebSocket, or over WebSocket channels (two per port).

pub(crate) mod spdy;
pub(crate) mod websocket;

use std::io;

use serde::Serialize;

/// What kubelet writes on the error stream when forwarding fails
/// (`portForwardErrResponse`); client-go closes the whole connection when told to.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorResponse {
    #[serde(rename = "closeConnection", skip_serializing_if = "std::ops::Not::not")]
    pub close_connection: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The message kubelet formats for a failed forward.
pub(crate) fn error_message(port: u16, pod: &str, err: &io::Error) -> String {
    format!("error forwarding port {port} to pod {pod}, uid : {err}")
}

/// `EPIPE` and `ECONNRESET` end one forwarded connection but keep the client's session (kubelet
/// issue 111825, 74551); anything else tells the client to close it.
pub(crate) fn error_response(port: u16, pod: &str, err: &io::Error) -> ErrorResponse {
    let transient = matches!(
        err.raw_os_error(),
        Some(libc_errno::EPIPE | libc_errno::ECONNRESET)
    ) || matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    );
    ErrorResponse {
        close_connection: !transient,
        message: error_message(port, pod, err),
    }
}

/// The two errno values that matter here (Linux numbering).
mod libc_errno {
    pub const EPIPE: i32 = 32;
    pub const ECONNRESET: i32 = 104;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_json() {
        let e = io::Error::from_raw_os_error(111);
        let json = serde_json::to_string(&error_response(80, "pod1", &e)).unwrap();
        assert!(json.starts_with(
            r#"{"closeConnection":true,"message":"error forwarding port 80 to pod pod1, uid : "#
        ));
        let e = io::Error::from_raw_os_error(104);
        let json = serde_json::to_string(&error_response(80, "p", &e)).unwrap();
        assert!(json.starts_with(r#"{"message":"error forwarding port 80"#));
    }
}
