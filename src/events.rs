//! Container lifecycle events for `GetContainerEvents` (kubelet's Evented PLEG).
//!
//! A broadcast channel: every subscriber sees every event; a subscriber that falls behind loses
//! the oldest events (and is told so in the log) instead of slowing the RPC that emitted them.

use tokio::sync::broadcast;

use crate::api::ContainerEventResponse;

/// How many events a slow subscriber may fall behind before it loses some.
const CAPACITY: usize = 1024;

/// The fan-out of container events.
pub struct EventBus {
    sender: broadcast::Sender<ContainerEventResponse>,
}

impl EventBus {
    /// An event bus with no subscribers.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        EventBus { sender }
    }

    /// Sends an event to every current subscriber; never blocks.
    pub fn emit(&self, event: ContainerEventResponse) {
        // An error only means nobody listens right now.
        let _ = self.sender.send(event);
    }

    /// A new subscription, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ContainerEventResponse> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
