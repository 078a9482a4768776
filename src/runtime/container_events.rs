//! Emitting container lifecycle events with the pod's and containers' status, as the Evented
//! PLEG wants them.

use tracing::debug;

use super::sandbox_status;
use crate::api::{ContainerEventResponse, ContainerEventType};
use crate::daemon::Daemon;
use crate::state::{Container, now_nanos};

/// Sends one event to every subscriber (never blocks).
pub(crate) fn emit(d: &Daemon, container: &Container, kind: ContainerEventType) {
    let status = d
        .pod(&container.pod_id)
        .map(|pod| sandbox_status::status_response(d, &pod, false));
    let (pod_sandbox_status, containers_statuses) = match status {
        Some(s) => (s.status, s.containers_statuses),
        None => (None, vec![super::container_status::status_of(container)]),
    };
    debug!(container = %container.id, event = ?kind, "container event");
    d.events.emit(ContainerEventResponse {
        container_id: container.id.clone(),
        container_event_type: kind as i32,
        created_at: now_nanos(),
        pod_sandbox_status,
        containers_statuses,
    });
}
