//! Connecting to a port inside a pod's network namespace (or on the host's loopback, for a
//! host-network pod).
//!
//! A socket belongs to the network namespace it was created in, whatever thread uses it later.
//! So one short-lived thread enters the pod's namespace (`setns` changes only the calling
//! thread), connects, hands the socket back and ends; no other work ever runs in the pod's
//! namespace, and the daemon's async threads never leave the host's.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A port on the pod's loopback answers at once or not at all; this only bounds a stuck one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DIAL_THREAD: &str = "netns-dial";

/// A TCP connection to `port` on the loopback of the network namespace pinned at `netns`, or
/// of the host when `None`: 127.0.0.1 first, then ::1 (as containerd tries both).
pub(super) async fn connect(netns: Option<PathBuf>, port: u16) -> io::Result<TcpStream> {
    let Some(netns) = netns else {
        return connect_loopback(port).await;
    };
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(DIAL_THREAD.into())
        .spawn(move || {
            // The receiver is gone only if the client went away meanwhile.
            let _ = tx.send(dial(&netns, port));
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("the network namespace dialer died"))??;
    TcpStream::from_std(stream)
}

/// The host's own loopback, from the daemon's network namespace.
async fn connect_loopback(port: u16) -> io::Result<TcpStream> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let attempt = |addr| tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr));
    let e4 = match attempt(v4).await {
        Ok(Ok(stream)) => return Ok(stream),
        Ok(Err(e)) => e,
        Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
    };
    match attempt(v6).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e6)) => Err(both_failed(port, "the host network", e4, e6)),
        Err(_) => Err(both_failed(
            port,
            "the host network",
            e4,
            io::ErrorKind::TimedOut.into(),
        )),
    }
}

fn both_failed(port: u16, place: &str, e4: io::Error, e6: io::Error) -> io::Error {
    io::Error::new(
        e4.kind(),
        format!("connecting to port {port} in {place}: IPv4: {e4}; IPv6: {e6}"),
    )
}

/// Runs on its own thread, which ends right after.
fn dial(netns: &Path, port: u16) -> io::Result<std::net::TcpStream> {
    let ns = File::open(netns).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("opening network namespace {}: {e}", netns.display()),
        )
    })?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        io::Error::other(format!(
            "entering network namespace {}: {e}",
            netns.display()
        ))
    })?;
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let stream = match std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(e4) => std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|e6| {
            let place = format!("network namespace {}", netns.display());
            both_failed(port, &place, e4, e6)
        })?,
    };
    stream.set_nonblocking(true)?;
    Ok(stream)
}
