//! The daemon's own metrics: RPC counts and latency per method.

use std::time::Duration;

/// Records one finished RPC.
pub fn observe_rpc(method: &'static str, elapsed: Duration, error: Option<tonic::Code>) {
    let _ = (method, elapsed, error);
}

/// Records one finished image pull.
pub fn observe_pull(elapsed: Duration, bytes: u64) {
    let _ = (elapsed, bytes);
}
