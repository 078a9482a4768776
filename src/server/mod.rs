//! The daemon's front door: configuration, logging, the CRI socket, signals and shutdown.

mod allocator;
mod blocking;
mod deadline;
mod journal;
mod notify;
mod rpc;
mod socket;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use longshore_config::{Config, DEFAULT_CONFIG_PATH, LogFormat};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::api::image_service_server::ImageServiceServer;
use crate::api::runtime_service_server::RuntimeServiceServer;
use crate::daemon::Daemon;
use crate::image::ImageApi;
use crate::runtime::RuntimeApi;

pub(crate) use rpc::rpc;

/// A server stream of CRI responses.
pub type RpcStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;
pub use blocking::blocking;
pub use status::{RpcError, code_of};

/// Flags of `longshore serve`; each overrides the configuration file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). A missing default file means all defaults.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// CRI socket path.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Persistent data folder.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Volatile state folder.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Log filter, e.g. `debug`.
    #[arg(long)]
    pub log_level: Option<String>,
}

/// Loads the configuration the way `serve` does: file, then flags, then validation.
pub fn load_config(args: &ServeArgs) -> Result<Config> {
    let (path, must_exist) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    let mut config = Config::load(&path, must_exist)?;
    if let Some(root) = &args.root {
        config.root = root.clone();
    }
    if let Some(state) = &args.state {
        config.state = state.clone();
    }
    if let Some(socket) = &args.socket {
        config.grpc.socket = socket.clone();
    }
    if let Some(level) = &args.log_level {
        config.log.level = level.clone();
    }
    config
        .validate()
        .map_err(|(key, reason)| anyhow::anyhow!("flag or key `{key}`: {reason}"))?;
    Ok(config)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn serve(args: ServeArgs) -> Result<()> {
    let config = load_config(&args)?;
    init_logging(&config);
    allocator::return_memory_promptly();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("longshore")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))
}

/// Logs on stderr: colours only on a terminal; under journald (`JOURNAL_STREAM`, set by
/// systemd for a service whose output goes to the journal) each line starts with its syslog
/// priority (`<3>` error … `<7>` debug) and carries no timestamp of its own.
fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !journald);
    match (config.log.format, journald) {
        (LogFormat::Json, _) => builder.json().init(),
        (LogFormat::Text, true) => builder
            .event_format(journal::SyslogPriority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .init(),
        (LogFormat::Text, false) => builder.init(),
    }
}

async fn run(config: Config) -> Result<()> {
    let socket_path = config.socket_path();
    let max = config.grpc.max_message_size.0 as usize;
    let group = config.grpc.group.clone();
    let daemon = Arc::new(Daemon::open(config).await?);
    crate::recovery::recover(&daemon)
        .await
        .context("recovering state")?;
    let streaming = crate::streaming_backend::start(&daemon).await?;
    if daemon.streaming.set(streaming).is_err() {
        anyhow::bail!("the streaming server was already started");
    }
    let listener = socket::bind(&socket_path, &group)?;
    info!(socket = %socket_path.display(), version = crate::version::VERSION, "longshore is serving CRI");

    let runtime_service = RuntimeServiceServer::new(RuntimeApi::new(daemon.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let image_service = ImageServiceServer::new(ImageApi::new(daemon.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let metrics = start_metrics(&daemon).await?;
    let trimmer = allocator::spawn_trimmer();
    let layer_gc = crate::layer_gc::LayerGc::spawn(&daemon);
    // Every connection through AuthorityFix: gRPC's C core and grpc-java send the socket path
    // as :authority, which h2 would refuse (crates/h2-authority).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::UnixListenerStream::new(listener),
        |accepted| accepted.map(longshore_h2_authority::AuthorityFix::new),
    );
    let shutdown = async {
        shutdown_signal().await;
        notify::stopping();
        // Endless streams would hold graceful shutdown open.
        crate::runtime::end_event_streams();
    };
    notify::ready();
    let result = tonic::transport::Server::builder()
        .layer(deadline::DeadlineLayer)
        .add_service(runtime_service)
        .add_service(image_service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    if let Some(task) = metrics {
        task.abort();
    }
    trimmer.abort();
    layer_gc.abort();
    daemon.shutdown().await;
    socket::remove(&socket_path);
    info!("longshore stopped; containers keep running under their monitors");
    result.context("serving gRPC")
}

/// Serves `/metrics` when `[metrics] address` is set.
async fn start_metrics(daemon: &Arc<Daemon>) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let address = &daemon.config.metrics.address;
    if address.is_empty() {
        return Ok(None);
    }
    let address = address
        .parse()
        .with_context(|| format!("[metrics] address {address:?}"))?;
    crate::metrics::http::serve(address, daemon.clone())
        .await
        .map(Some)
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
}
