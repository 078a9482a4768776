//! `PortForward`: a single-use URL on the streaming server for forwarding connections to ports
//! on a pod's loopback, inside its network namespace (the host's, for a host-network pod, as
//! containerd does and critest's "portforward in host network" expects).

use std::sync::Arc;

use crate::server::RpcError;

use super::lookup;
use crate::api::{PortForwardRequest, PortForwardResponse};
use crate::daemon::Daemon;
use crate::state::PodState;
use crate::streaming_backend;

pub(super) async fn port_forward(
    d: &Arc<Daemon>,
    req: PortForwardRequest,
) -> Result<PortForwardResponse, RpcError> {
    let pod = lookup::pod(d, &req.pod_sandbox_id)?;
    let record = pod.snapshot();
    if record.state != PodState::Ready {
        return Err(RpcError::failed_precondition(format!(
            "pod sandbox {} is not ready",
            pod.id
        )));
    }
    let ports = ports(&req.port)?;
    let url = streaming_backend::server(d)?.port_forward_url(
        longshore_streaming::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            ports,
        },
    )?;
    Ok(PortForwardResponse { url })
}

/// The request's ports, each 1..=65535.
fn ports(requested: &[i32]) -> Result<Vec<u16>, RpcError> {
    requested
        .iter()
        .map(|&p| {
            u16::try_from(p)
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| RpcError::invalid_argument(format!("port {p} is not in 1..65535")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_must_be_real() {
        assert_eq!(ports(&[80, 65535]).unwrap(), vec![80, 65535]);
        assert!(ports(&[]).unwrap().is_empty());
        for bad in [0, -1, 65536] {
            assert_eq!(
                ports(&[bad]).unwrap_err().code(),
                tonic::Code::InvalidArgument
            );
        }
    }
}
