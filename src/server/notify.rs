//! systemd's readiness protocol (`sd_notify(3)`): with `Type=notify`, systemd starts what is
//! ordered after Longshore (kubelet) only once the daemon says `READY=1`, which it does when the
//! CRI socket answers; `STOPPING=1` at shutdown. A datagram to `$NOTIFY_SOCKET`, nothing more,
//! so no crate (and no libsystemd) is needed. Without the variable (not under systemd) nothing
//! is sent.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for a `Type=notify` service.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells systemd the CRI socket is serving.
pub(crate) fn ready() {
    send(&format!(
        "READY=1\nMAINPID={}\nSTATUS=serving CRI",
        std::process::id()
    ));
}

/// Tells systemd the daemon is stopping (containers keep running).
pub(crate) fn stopping() {
    send("STOPPING=1\nSTATUS=stopping; containers keep running");
}

fn send(message: &str) {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    // `@name` is an abstract socket.
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(message.as_bytes(), &addr)
    });
    if let Err(e) = sent {
        tracing::warn!(socket = ?path, error = %e, "cannot notify systemd");
    }
}
