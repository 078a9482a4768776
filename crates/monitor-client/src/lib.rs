//! What the daemon needs of a container monitor, without the monitor itself: the
//! [`MonitorConfig`] it writes, the wire [`protocol`], the [`records`] a monitor leaves behind,
//! and the tokio [`client`] that spawns a monitor ([`Monitor::spawn`]), talks to a running one
//! ([`MonitorClient`]) and reads a finished one's exit ([`read_exit_record`]).
//!
//! The monitor process lives in `crates/monitor` (the `longshore-monitor` binary, which links
//! youki's libcontainer); this crate is the half the daemon links, so the daemon does not carry
//! libcontainer.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod fd;
pub mod fd_passing;
pub mod protocol;
pub mod records;
pub mod sockpath;

/// `longshore-monitor checkpoint ...` dumps a running container with CRIU (crates/monitor's
/// `checkpoint` module) instead of running a monitor.
pub const CHECKPOINT_SUBCOMMAND: &str = "checkpoint";

pub use client::{
    AttachSession, AttachStreams, ExecExit, ExecSession, ExecSpec, FdStream, Monitor,
    MonitorClient, MonitorError, Started,
};
pub use config::{ExecutorConfig, MONITOR_BINARY, MonitorCommand, MonitorConfig};
pub use protocol::MonitorStatus;
pub use records::{ExitReason, ExitRecord, StartRecord, read_exit_record, read_start_record};
