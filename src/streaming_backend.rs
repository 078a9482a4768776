//! The daemon's side of the streaming server: what runs behind the URLs that `Exec`, `Attach`
//! and `PortForward` hand out.
//!
//! - exec: the container's monitor starts the process and passes its stdio fds to us; we copy
//!   between them and the client's streams, apply terminal resizes, and report the exit code
//!   once all output is written ([`exec`]).
//! - attach: the monitor hands out a copy of the container's output and a writer to its stdin
//!   ([`attach`]).
//! - port-forward: a TCP connection to 127.0.0.1:port made inside the pod's pinned network
//!   namespace ([`netns_dial`]), or on the host's loopback for a host-network pod (as
//!   containerd does, and critest checks), then bytes both ways ([`copy::splice`]).
//!
//! The backend holds the daemon weakly: the daemon owns the server, which owns the backend.

mod attach;
mod copy;
pub(crate) mod exec;
mod netns_dial;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use anyhow::Context as _;
use futures::future::BoxFuture;
use longshore_monitor_client::MonitorClient;
use longshore_streaming::{
    ExitStatus, PortStream, StreamBackend, StreamIo, StreamingConfig, StreamingServer, TlsConfig,
};

use crate::daemon::Daemon;
use crate::server::RpcError;
use crate::state::{Container, ContainerState, PodState};

/// Where the server listens when `[streaming] address` is empty: loopback, any free port.
const DEFAULT_ADDRESS: &str = "127.0.0.1:0";
/// A terminal exec gets this, as containerd and CRI-O give it.
const EXEC_TERM_ENV: &str = "TERM=xterm";

/// Starts the streaming server for `daemon` with its `[streaming]` settings.
pub async fn start(daemon: &Arc<Daemon>) -> anyhow::Result<StreamingServer> {
    let config = server_config(&daemon.config.streaming)?;
    let addr = config.addr;
    let backend = Arc::new(DaemonBackend {
        daemon: Arc::downgrade(daemon),
    });
    StreamingServer::start(config, backend)
        .await
        .with_context(|| format!("starting the streaming server on {addr}"))
}

/// The streaming server's settings from `[streaming]`.
pub fn server_config(c: &longshore_config::StreamingConfig) -> anyhow::Result<StreamingConfig> {
    let address = if c.address.is_empty() {
        DEFAULT_ADDRESS
    } else {
        c.address.as_str()
    };
    let addr: SocketAddr = address
        .parse()
        .with_context(|| format!("[streaming] address {address:?} is not an ip:port address"))?;
    let tls = (!c.tls_cert.as_os_str().is_empty()).then(|| TlsConfig {
        cert: c.tls_cert.clone(),
        key: c.tls_key.clone(),
    });
    Ok(StreamingConfig {
        addr,
        tls,
        token_ttl: c.token_ttl,
        ..StreamingConfig::default()
    })
}

/// The server, or `Unavailable` before it is up.
pub(crate) fn server(d: &Daemon) -> Result<&StreamingServer, RpcError> {
    d.streaming
        .get()
        .ok_or_else(|| RpcError::unavailable("the streaming server is not running"))
}

/// [`StreamBackend`] on the daemon's containers and pods.
pub struct DaemonBackend {
    daemon: Weak<Daemon>,
}

impl DaemonBackend {
    fn daemon(&self) -> io::Result<Arc<Daemon>> {
        self.daemon
            .upgrade()
            .ok_or_else(|| io::Error::other("the daemon is shutting down"))
    }

    /// A running container and a client for its monitor.
    async fn running(&self, id: &str) -> io::Result<(Arc<Container>, MonitorClient)> {
        let container = self.daemon()?.container(id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("container {id} not found"))
        })?;
        if container.state() != ContainerState::Running {
            return Err(io::Error::other(format!("container {id} is not running")));
        }
        let client = monitor_client(&container).await?;
        Ok((container, client))
    }

    /// The pinned network namespace of a ready pod; `None` for a host-network pod.
    fn pod_netns(&self, pod_id: &str) -> io::Result<Option<PathBuf>> {
        let pod = self.daemon()?.pod(pod_id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("pod sandbox {pod_id} not found"),
            )
        })?;
        let record = pod.snapshot();
        if record.state != PodState::Ready {
            return Err(io::Error::other(format!(
                "pod sandbox {pod_id} is not ready"
            )));
        }
        Ok(record.netns)
    }

    async fn exec_in(
        &self,
        id: &str,
        cmd: &[String],
        tty: bool,
        io: StreamIo,
    ) -> io::Result<ExitStatus> {
        let (_container, client) = self.running(id).await?;
        let env = if tty {
            vec![EXEC_TERM_ENV.to_string()]
        } else {
            Vec::new()
        };
        let code = exec::stream(&client, cmd, env, tty, io).await?;
        Ok(ExitStatus { code })
    }

    async fn attach_to(&self, id: &str, io: StreamIo) -> io::Result<()> {
        let (container, client) = self.running(id).await?;
        let mode = attach::Mode {
            tty: container.config.tty,
            stdin_once: container.config.stdin_once,
        };
        attach::attach(&client, mode, io).await
    }

    async fn forward(&self, pod_id: &str, port: u16, stream: PortStream) -> io::Result<()> {
        let netns = self.pod_netns(pod_id)?;
        let conn = netns_dial::connect(netns, port).await?;
        copy::splice(stream, conn).await
    }
}

/// A client for the container's monitor, as an I/O error when it cannot be reached.
async fn monitor_client(container: &Container) -> io::Result<MonitorClient> {
    let state_dir = container.snapshot().state_dir;
    MonitorClient::connect(&state_dir)
        .await
        .map_err(|e| io::Error::other(format!("container {} monitor: {e}", container.id)))
}

impl StreamBackend for DaemonBackend {
    fn exec<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<ExitStatus>> {
        Box::pin(self.exec_in(container_id, cmd, tty, io))
    }

    fn attach<'a>(
        &'a self,
        container_id: &'a str,
        _tty: bool,
        io: StreamIo,
    ) -> BoxFuture<'a, io::Result<()>> {
        // The container's own terminal setting decides how its stdio looks, not the request's.
        Box::pin(self.attach_to(container_id, io))
    }

    fn port_forward<'a>(
        &'a self,
        pod_sandbox_id: &'a str,
        port: u16,
        stream: PortStream,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.forward(pod_sandbox_id, port, stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_address_tls_and_ttl() {
        let mut c = longshore_config::StreamingConfig {
            address: String::new(),
            ..Default::default()
        };
        let s = server_config(&c).unwrap();
        assert_eq!(s.addr, DEFAULT_ADDRESS.parse::<SocketAddr>().unwrap());
        assert!(s.tls.is_none());
        c.address = "127.0.0.1:10010".into();
        c.tls_cert = "/c.pem".into();
        c.tls_key = "/k.pem".into();
        c.token_ttl = std::time::Duration::from_secs(5);
        let s = server_config(&c).unwrap();
        assert_eq!(s.addr.port(), 10010);
        assert_eq!(s.tls.unwrap().key, PathBuf::from("/k.pem"));
        assert_eq!(s.token_ttl, std::time::Duration::from_secs(5));
        c.address = "nonsense".into();
        assert!(server_config(&c).is_err());
    }
}
