//! RuntimeService: pods, containers, streaming, stats and events. One file per RPC; this file
//! only routes each RPC through [`crate::server::rpc`] to its handler.

mod container;
mod container_attach;
mod container_checkpoint;
mod container_create;
mod container_events;
mod container_exec;
mod container_exec_sync;
pub use container::exit::recover_container;
pub(crate) use container::idmapped_mounts::unmount_all as unmount_idmapped_mounts;
pub(crate) use container::image_volumes::unmount_all as unmount_image_volumes;
pub(crate) use container_create::undo as undo_container_create;
pub(crate) use pod::teardown::{release_orphan as release_orphan_pod, unmount};
pub(crate) use pod::userns::probe as probe_user_namespaces;
pub(crate) use sandbox_run::undo as undo_pod_create;
mod container_list;
mod container_log_reopen;
mod container_remove;
mod container_start;
mod container_stats;
mod container_status;
mod container_stop;
mod container_update;
mod events_subscribe;
pub use events_subscribe::end_event_streams;
mod lookup;
mod metric_descriptors;
mod pod;
mod runtime_config;
mod sandbox_list;
mod sandbox_metrics;
mod sandbox_portforward;
mod sandbox_remove;
mod sandbox_run;
mod sandbox_stats;
mod sandbox_status;
mod sandbox_stop;
mod sandbox_update;
mod stats;
mod status;
pub(crate) mod systemd_units;
mod validate;
mod version;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::runtime_service_server::RuntimeService;
use crate::api::*;
use crate::daemon::Daemon;
use crate::server::rpc;

pub(crate) use crate::server::RpcStream;

/// The RuntimeService as tonic serves it.
pub struct RuntimeApi {
    daemon: Arc<Daemon>,
}

impl RuntimeApi {
    /// Serves RuntimeService from `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        RuntimeApi { daemon }
    }
}

macro_rules! route {
    ($self:ident, $name:literal, $req:ident, $handler:path) => {{
        let d = $self.daemon.clone();
        rpc($name, $req, move |r| async move { $handler(&d, r).await }).await
    }};
}

#[tonic::async_trait]
impl RuntimeService for RuntimeApi {
    async fn version(
        &self,
        req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        route!(self, "Version", req, version::version)
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<RunPodSandboxRequest>,
    ) -> Result<Response<RunPodSandboxResponse>, Status> {
        route!(self, "RunPodSandbox", req, sandbox_run::run_pod_sandbox)
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<StopPodSandboxRequest>,
    ) -> Result<Response<StopPodSandboxResponse>, Status> {
        route!(self, "StopPodSandbox", req, sandbox_stop::stop_pod_sandbox)
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<RemovePodSandboxRequest>,
    ) -> Result<Response<RemovePodSandboxResponse>, Status> {
        route!(
            self,
            "RemovePodSandbox",
            req,
            sandbox_remove::remove_pod_sandbox
        )
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<PodSandboxStatusRequest>,
    ) -> Result<Response<PodSandboxStatusResponse>, Status> {
        route!(
            self,
            "PodSandboxStatus",
            req,
            sandbox_status::pod_sandbox_status
        )
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<ListPodSandboxRequest>,
    ) -> Result<Response<ListPodSandboxResponse>, Status> {
        route!(self, "ListPodSandbox", req, sandbox_list::list_pod_sandbox)
    }

    type StreamPodSandboxesStream = RpcStream<StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        req: Request<StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        route!(
            self,
            "StreamPodSandboxes",
            req,
            sandbox_list::stream_pod_sandboxes
        )
    }

    async fn create_container(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        route!(
            self,
            "CreateContainer",
            req,
            container_create::create_container
        )
    }

    async fn start_container(
        &self,
        req: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        route!(
            self,
            "StartContainer",
            req,
            container_start::start_container
        )
    }

    async fn stop_container(
        &self,
        req: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        route!(self, "StopContainer", req, container_stop::stop_container)
    }

    async fn remove_container(
        &self,
        req: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        route!(
            self,
            "RemoveContainer",
            req,
            container_remove::remove_container
        )
    }

    async fn list_containers(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        route!(self, "ListContainers", req, container_list::list_containers)
    }

    type StreamContainersStream = RpcStream<StreamContainersResponse>;

    async fn stream_containers(
        &self,
        req: Request<StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        route!(
            self,
            "StreamContainers",
            req,
            container_list::stream_containers
        )
    }

    async fn container_status(
        &self,
        req: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        route!(
            self,
            "ContainerStatus",
            req,
            container_status::container_status
        )
    }

    async fn update_container_resources(
        &self,
        req: Request<UpdateContainerResourcesRequest>,
    ) -> Result<Response<UpdateContainerResourcesResponse>, Status> {
        route!(
            self,
            "UpdateContainerResources",
            req,
            container_update::update_container_resources
        )
    }

    async fn reopen_container_log(
        &self,
        req: Request<ReopenContainerLogRequest>,
    ) -> Result<Response<ReopenContainerLogResponse>, Status> {
        route!(
            self,
            "ReopenContainerLog",
            req,
            container_log_reopen::reopen_container_log
        )
    }

    async fn exec_sync(
        &self,
        req: Request<ExecSyncRequest>,
    ) -> Result<Response<ExecSyncResponse>, Status> {
        route!(self, "ExecSync", req, container_exec_sync::exec_sync)
    }

    async fn exec(&self, req: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        route!(self, "Exec", req, container_exec::exec)
    }

    async fn attach(
        &self,
        req: Request<AttachRequest>,
    ) -> Result<Response<AttachResponse>, Status> {
        route!(self, "Attach", req, container_attach::attach)
    }

    async fn port_forward(
        &self,
        req: Request<PortForwardRequest>,
    ) -> Result<Response<PortForwardResponse>, Status> {
        route!(self, "PortForward", req, sandbox_portforward::port_forward)
    }

    async fn container_stats(
        &self,
        req: Request<ContainerStatsRequest>,
    ) -> Result<Response<ContainerStatsResponse>, Status> {
        route!(
            self,
            "ContainerStats",
            req,
            container_stats::container_stats
        )
    }

    async fn list_container_stats(
        &self,
        req: Request<ListContainerStatsRequest>,
    ) -> Result<Response<ListContainerStatsResponse>, Status> {
        route!(
            self,
            "ListContainerStats",
            req,
            container_stats::list_container_stats
        )
    }

    type StreamContainerStatsStream = RpcStream<StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        req: Request<StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        route!(
            self,
            "StreamContainerStats",
            req,
            container_stats::stream_container_stats
        )
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<PodSandboxStatsRequest>,
    ) -> Result<Response<PodSandboxStatsResponse>, Status> {
        route!(
            self,
            "PodSandboxStats",
            req,
            sandbox_stats::pod_sandbox_stats
        )
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<ListPodSandboxStatsRequest>,
    ) -> Result<Response<ListPodSandboxStatsResponse>, Status> {
        route!(
            self,
            "ListPodSandboxStats",
            req,
            sandbox_stats::list_pod_sandbox_stats
        )
    }

    type StreamPodSandboxStatsStream = RpcStream<StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        req: Request<StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        route!(
            self,
            "StreamPodSandboxStats",
            req,
            sandbox_stats::stream_pod_sandbox_stats
        )
    }

    async fn update_runtime_config(
        &self,
        req: Request<UpdateRuntimeConfigRequest>,
    ) -> Result<Response<UpdateRuntimeConfigResponse>, Status> {
        route!(
            self,
            "UpdateRuntimeConfig",
            req,
            runtime_config::update_runtime_config
        )
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        route!(self, "Status", req, status::status)
    }

    async fn checkpoint_container(
        &self,
        req: Request<CheckpointContainerRequest>,
    ) -> Result<Response<CheckpointContainerResponse>, Status> {
        route!(
            self,
            "CheckpointContainer",
            req,
            container_checkpoint::checkpoint_container
        )
    }

    type GetContainerEventsStream = RpcStream<ContainerEventResponse>;

    async fn get_container_events(
        &self,
        req: Request<GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        route!(
            self,
            "GetContainerEvents",
            req,
            events_subscribe::get_container_events
        )
    }

    async fn list_metric_descriptors(
        &self,
        req: Request<ListMetricDescriptorsRequest>,
    ) -> Result<Response<ListMetricDescriptorsResponse>, Status> {
        route!(
            self,
            "ListMetricDescriptors",
            req,
            sandbox_metrics::list_metric_descriptors
        )
    }

    async fn list_pod_sandbox_metrics(
        &self,
        req: Request<ListPodSandboxMetricsRequest>,
    ) -> Result<Response<ListPodSandboxMetricsResponse>, Status> {
        route!(
            self,
            "ListPodSandboxMetrics",
            req,
            sandbox_metrics::list_pod_sandbox_metrics
        )
    }

    type StreamPodSandboxMetricsStream = RpcStream<StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        req: Request<StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        route!(
            self,
            "StreamPodSandboxMetrics",
            req,
            sandbox_metrics::stream_pod_sandbox_metrics
        )
    }

    async fn runtime_config(
        &self,
        req: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        route!(self, "RuntimeConfig", req, runtime_config::runtime_config)
    }

    async fn update_pod_sandbox_resources(
        &self,
        req: Request<UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<UpdatePodSandboxResourcesResponse>, Status> {
        route!(
            self,
            "UpdatePodSandboxResources",
            req,
            sandbox_update::update_pod_sandbox_resources
        )
    }
}
