//! Layer garbage collection in the background. RemoveContainer and RemovePodSandbox only ask
//! for it; one task runs the collection on the blocking pool, so a removal never waits for a
//! directory walk and a burst of removals costs one collection, not one each.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::daemon::Daemon;

/// Requests for a layer collection, coalesced.
#[derive(Default)]
pub struct LayerGc {
    wanted: Arc<Notify>,
}

impl LayerGc {
    /// Asks for a collection soon; returns at once.
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    /// Starts the task that collects whenever asked, until the daemon is gone.
    pub fn spawn(daemon: &Arc<Daemon>) -> JoinHandle<()> {
        let weak: Weak<Daemon> = Arc::downgrade(daemon);
        let wanted = daemon.layer_gc.wanted.clone();
        tokio::spawn(async move {
            loop {
                wanted.notified().await;
                let Some(d) = weak.upgrade() else { return };
                let snapshots = d.snapshots.clone();
                drop(d);
                match tokio::task::spawn_blocking(move || snapshots.gc()).await {
                    Ok(Ok(report)) => debug!(?report, "layers collected"),
                    Ok(Err(e)) => warn!(error = %e, "layer garbage collection failed"),
                    Err(e) => warn!(error = %e, "layer garbage collection task failed"),
                }
            }
        })
    }
}
