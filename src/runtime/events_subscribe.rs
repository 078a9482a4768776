//! `GetContainerEvents`: a server stream of container lifecycle events for kubelet's Evented
//! PLEG, fed by [`crate::events::EventBus`].
//!
//! Every subscriber sees every event from its subscription on, in order. Emitters never wait:
//! a subscriber that falls more than the bus's capacity behind is dropped (its stream ends with
//! `ABORTED`, and the log says how many events it lost) so it resubscribes and relists, rather
//! than going on with a hole in its history. At daemon shutdown every stream ends, so graceful
//! shutdown does not wait for subscribers that never hang up.

use std::sync::{Arc, LazyLock};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tonic::Status;

use crate::server::RpcError;
use tracing::{debug, warn};

use super::RpcStream;
use crate::api::{ContainerEventResponse, GetEventsRequest};
use crate::daemon::Daemon;

/// Flips to `true` once the daemon is shutting down.
static SHUTDOWN: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// Ends every event stream (at daemon shutdown).
pub fn end_event_streams() {
    SHUTDOWN.send_replace(true);
}

pub(super) async fn get_container_events(
    d: &Arc<Daemon>,
    _req: GetEventsRequest,
) -> Result<RpcStream<ContainerEventResponse>, RpcError> {
    debug!("container events subscriber joined");
    Ok(event_stream(d.events.subscribe(), SHUTDOWN.subscribe()))
}

struct Subscription {
    events: broadcast::Receiver<ContainerEventResponse>,
    shutdown: watch::Receiver<bool>,
}

/// The events `events` receives, until the subscriber lags or `shutdown` turns true.
pub(crate) fn event_stream(
    events: broadcast::Receiver<ContainerEventResponse>,
    shutdown: watch::Receiver<bool>,
) -> RpcStream<ContainerEventResponse> {
    let start = Some(Subscription { events, shutdown });
    Box::pin(futures::stream::unfold(start, |sub| async move {
        let mut sub = sub?;
        if *sub.shutdown.borrow() {
            return None;
        }
        let received = tokio::select! {
            received = sub.events.recv() => received,
            _ = sub.shutdown.wait_for(|down| *down) => {
                debug!("daemon shutting down: ending a container events stream");
                return None;
            }
        };
        match received {
            Ok(event) => Some((Ok(event), Some(sub))),
            Err(RecvError::Lagged(lost)) => {
                warn!(lost, "container events subscriber fell behind; dropping it");
                let status = Status::aborted(format!(
                    "GetContainerEvents: subscriber fell behind and lost {lost} events; subscribe again and relist"
                ));
                Some((Err(status), None))
            }
            Err(RecvError::Closed) => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::events::EventBus;

    fn event(id: &str) -> ContainerEventResponse {
        ContainerEventResponse {
            container_id: id.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let bus = EventBus::new();
        let (_down, shutdown) = watch::channel(false);
        let mut a = event_stream(bus.subscribe(), shutdown.clone());
        let mut b = event_stream(bus.subscribe(), shutdown);
        for id in ["1", "2", "3"] {
            bus.emit(event(id));
        }
        for s in [&mut a, &mut b] {
            for id in ["1", "2", "3"] {
                assert_eq!(s.next().await.unwrap().unwrap().container_id, id);
            }
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_dropped_without_blocking_the_emitter() {
        let bus = EventBus::new();
        let (_down, shutdown) = watch::channel(false);
        let mut slow = event_stream(bus.subscribe(), shutdown.clone());
        let mut fast = event_stream(bus.subscribe(), shutdown);
        // Far more than the bus holds; emit never waits for anyone.
        for i in 0..5000 {
            bus.emit(event(&i.to_string()));
            if i < 10 {
                assert_eq!(
                    fast.next().await.unwrap().unwrap().container_id,
                    i.to_string()
                );
            }
        }
        let err = slow.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted, "{err}");
        assert!(err.message().contains("lost"), "{err}");
        assert!(
            slow.next().await.is_none(),
            "the stream ends after the error"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_idle_streams() {
        let bus = EventBus::new();
        let (down, shutdown) = watch::channel(false);
        let mut s = event_stream(bus.subscribe(), shutdown);
        let waiter = tokio::spawn(async move { s.next().await.is_none() });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        down.send_replace(true);
        assert!(waiter.await.unwrap(), "the stream ended without an item");
    }
}
