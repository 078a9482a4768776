//! One CRI endpoint under test and the CRI calls the scenarios make on it. Every pod the bench
//! makes is remembered until removed, so a failed or interrupted run can sweep up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::cgroups;
use super::workload::{self, PidShape};
use longshore_cri_api::client::CriClient;
use longshore_cri_api::v1::*;

/// How one endpoint is reached and where its pods go.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// The name the report uses.
    pub name: String,
    /// `unix:///path` or a plain socket path.
    pub uri: String,
    /// kubelet-style cgroup parent for the pods (`pod<uid>` goes inside), if any.
    pub cgroup_parent: Option<String>,
    /// The memory cgroup holding the runtime's processes, for the memory figures.
    pub runtime_cgroup: Option<String>,
}

/// A connected endpoint.
pub struct Endpoint {
    /// What it was given.
    pub spec: EndpointSpec,
    /// The socket path.
    pub socket: PathBuf,
    /// The client (clone it per call: tonic clients are cheap handles on one connection).
    pub client: CriClient,
    /// Pod log folders go here, one per pod, as kubelet makes them.
    log_dir: PathBuf,
    /// This run's id, labelled on every pod.
    run_id: String,
    /// Pods made and not yet removed.
    live: Arc<Mutex<HashSet<String>>>,
}

/// A pod the bench made.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Sandbox id.
    pub id: String,
    /// Its metadata uid.
    pub uid: String,
    /// The config it was made with (CreateContainer sends it again).
    pub config: PodSandboxConfig,
    /// Whose PID namespace its containers run in.
    pub pid: PidShape,
}

/// How long a stop may take before the runtime kills (kubelet sends the pod's grace period).
const STOP_TIMEOUT_SECS: i64 = 10;

/// The socket path of a `unix://` URI.
pub fn socket_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("unix://").unwrap_or(uri))
}

impl Endpoint {
    /// Connects to the endpoint.
    pub async fn connect(spec: EndpointSpec, log_root: &Path, run_id: &str) -> Result<Endpoint> {
        let socket = socket_path(&spec.uri);
        let client = CriClient::connect(&socket)
            .await
            .with_context(|| format!("connecting to {} at {}", spec.name, socket.display()))?;
        Ok(Endpoint {
            log_dir: log_root.join(&spec.name),
            spec,
            socket,
            client,
            run_id: run_id.to_string(),
            live: Arc::default(),
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The Version RPC's answer.
    pub async fn version(&self) -> Result<VersionResponse> {
        let mut rt = self.client.runtime.clone();
        let req = VersionRequest {
            version: "v1".into(),
        };
        Ok(rt.version(req).await.context("Version")?.into_inner())
    }

    /// Runs a kubelet-shaped pod named `name`, making its log folder first as kubelet does.
    pub async fn run_pod(&self, name: &str) -> Result<Pod> {
        self.run_pod_shaped(name, PidShape::PerContainer).await
    }

    /// Runs a pod named `name` whose containers' PID namespace `pid` says.
    pub async fn run_pod_shaped(&self, name: &str, pid: PidShape) -> Result<Pod> {
        self.run_pod_in(name, pid, None).await
    }

    /// Runs a pod named `name`; with `userns_base`, in a user namespace of its own mapping
    /// 65536 ids from that host id (`hostUsers: false`, as kubelet allocates it).
    pub async fn run_pod_in(
        &self,
        name: &str,
        pid: PidShape,
        userns_base: Option<u32>,
    ) -> Result<Pod> {
        let uid = format!("{:016x}", rand::random::<u64>());
        let log_dir = self.log_dir.join(&uid);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let config = workload::pod_config(
            name,
            &uid,
            &log_dir.to_string_lossy(),
            self.spec.cgroup_parent.as_deref(),
            &self.run_id,
            pid,
        );
        let mut config = config;
        if let Some(base) = userns_base {
            workload::with_user_namespace(&mut config, base);
        }
        let mut rt = self.client.runtime.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let id = rt
            .run_pod_sandbox(req)
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        Ok(Pod {
            id,
            uid,
            config,
            pid,
        })
    }

    /// Creates a container running the usual workload in the pod; returns its id.
    pub async fn create_container(&self, pod: &Pod, name: &str, image: &str) -> Result<String> {
        self.create_container_running(pod, name, image, None).await
    }

    /// Creates a container running `command` (else the usual workload); returns its id.
    pub async fn create_container_running(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        command: Option<&[&str]>,
    ) -> Result<String> {
        let mut rt = self.client.runtime.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(workload::in_pods_user_namespace(
                workload::container_config(name, image, command, pod.pid),
                &pod.config,
            )),
            sandbox_config: Some(pod.config.clone()),
        };
        Ok(rt
            .create_container(req)
            .await
            .context("CreateContainer")?
            .into_inner()
            .container_id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let mut rt = self.client.runtime.clone();
        rt.start_container(StartContainerRequest {
            container_id: id.to_string(),
        })
        .await
        .context("StartContainer")?;
        Ok(())
    }

    /// Stops a container (SIGTERM, which the workload obeys at once).
    pub async fn stop_container(&self, id: &str) -> Result<()> {
        let mut rt = self.client.runtime.clone();
        let req = StopContainerRequest {
            container_id: id.to_string(),
            timeout: STOP_TIMEOUT_SECS,
        };
        rt.stop_container(req).await.context("StopContainer")?;
        Ok(())
    }

    /// Removes a container.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let mut rt = self.client.runtime.clone();
        rt.remove_container(RemoveContainerRequest {
            container_id: id.to_string(),
        })
        .await
        .context("RemoveContainer")?;
        Ok(())
    }

    /// Stops the pod.
    pub async fn stop_pod(&self, pod: &Pod) -> Result<()> {
        let mut rt = self.client.runtime.clone();
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .context("StopPodSandbox")?;
        Ok(())
    }

    /// Removes a stopped pod and, as kubelet does afterwards, its log folder and its pod cgroup.
    pub async fn remove_pod(&self, pod: &Pod) -> Result<()> {
        let mut rt = self.client.runtime.clone();
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .context("RemovePodSandbox")?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pod.id);
        let _ = std::fs::remove_dir_all(self.log_dir.join(&pod.uid));
        if let Some(parent) = &self.spec.cgroup_parent {
            let path = workload::pod_cgroup(parent, &pod.uid);
            let _ = tokio::task::spawn_blocking(move || cgroups::remove_pod_cgroup(&path)).await;
        }
        Ok(())
    }

    /// Stops and removes a pod, with everything in it.
    pub async fn teardown(&self, pod: &Pod) -> Result<()> {
        self.stop_pod(pod).await?;
        self.remove_pod(pod).await
    }

    /// Tears pods down, `parallel` at a time; returns the first error after trying all.
    pub async fn teardown_all(&self, pods: &[Pod], parallel: usize) -> Result<()> {
        use futures::StreamExt;
        let results: Vec<Result<()>> = futures::stream::iter(pods.iter().map(|p| self.teardown(p)))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Every container id on the endpoint.
    pub async fn container_ids(&self) -> Result<HashSet<String>> {
        let mut rt = self.client.runtime.clone();
        let resp = rt
            .list_containers(ListContainersRequest::default())
            .await
            .context("ListContainers")?;
        Ok(resp
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    /// Times one unfiltered ListContainers; returns the time and how many came back.
    pub async fn time_list_containers(&self) -> Result<(Duration, usize)> {
        let mut rt = self.client.runtime.clone();
        let t = Instant::now();
        let resp = rt
            .list_containers(ListContainersRequest::default())
            .await
            .context("ListContainers")?;
        Ok((t.elapsed(), resp.into_inner().containers.len()))
    }

    /// Times one unfiltered ListPodSandbox; returns the time and how many came back.
    pub async fn time_list_pods(&self) -> Result<(Duration, usize)> {
        let mut rt = self.client.runtime.clone();
        let t = Instant::now();
        let resp = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .context("ListPodSandbox")?;
        Ok((t.elapsed(), resp.into_inner().items.len()))
    }

    /// Runs `cmd` in the container (ExecSync); fails unless it exits 0.
    pub async fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<Vec<u8>> {
        let mut rt = self.client.runtime.clone();
        let out = rt
            .exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 30,
            })
            .await
            .context("ExecSync")?
            .into_inner();
        if out.exit_code != 0 {
            anyhow::bail!("ExecSync {cmd:?} exited {}", out.exit_code);
        }
        Ok(out.stdout)
    }

    /// Polls until the container has exited; returns its exit code.
    pub async fn wait_exited(&self, id: &str) -> Result<i32> {
        let mut rt = self.client.runtime.clone();
        loop {
            let status = rt
                .container_status(ContainerStatusRequest {
                    container_id: id.to_string(),
                    verbose: false,
                })
                .await
                .context("ContainerStatus")?
                .into_inner()
                .status
                .context("ContainerStatus without a status")?;
            if status.state == ContainerState::ContainerExited as i32 {
                return Ok(status.exit_code);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How many containers of the pods given are running.
    pub async fn running_in(&self, pods: &HashSet<String>) -> Result<usize> {
        let mut rt = self.client.runtime.clone();
        let filter = ContainerFilter {
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        let resp = rt
            .list_containers(ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .context("ListContainers")?;
        Ok(resp
            .into_inner()
            .containers
            .iter()
            .filter(|c| pods.contains(&c.pod_sandbox_id))
            .count())
    }

    /// The image's id and size, if the endpoint has it.
    pub async fn image_status(&self, image: &str) -> Result<Option<(String, u64)>> {
        let mut img = self.client.image.clone();
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        let resp = img
            .image_status(req)
            .await
            .context("ImageStatus")?
            .into_inner();
        Ok(resp
            .image
            .filter(|i| !i.id.is_empty())
            .map(|i| (i.id, i.size)))
    }

    /// Pulls an image; returns its reference.
    pub async fn pull(&self, image: &str) -> Result<String> {
        let mut img = self.client.image.clone();
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(img
            .pull_image(req)
            .await
            .with_context(|| format!("PullImage {image}"))?
            .into_inner()
            .image_ref)
    }

    /// Removes an image (by id: every tag of it, and its content).
    pub async fn remove_image(&self, id: &str) -> Result<()> {
        let mut img = self.client.image.clone();
        let req = RemoveImageRequest {
            image: Some(ImageSpec {
                image: id.into(),
                ..Default::default()
            }),
        };
        img.remove_image(req)
            .await
            .with_context(|| format!("RemoveImage {id}"))?;
        Ok(())
    }

    /// Pulls the image unless the endpoint has it already.
    pub async fn ensure_image(&self, image: &str) -> Result<()> {
        if self.image_status(image).await?.is_none() {
            self.pull(image).await?;
        }
        Ok(())
    }

    /// Removes every pod this run made and has not removed, including ones it lost track of
    /// (found by the run's label). Returns how many.
    pub async fn sweep(&self) -> usize {
        let mut ids: HashSet<String> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        let mut rt = self.client.runtime.clone();
        let filter = PodSandboxFilter {
            label_selector: [(workload::RUN_LABEL.to_string(), self.run_id.clone())].into(),
            ..Default::default()
        };
        if let Ok(resp) = rt
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
        {
            ids.extend(resp.into_inner().items.into_iter().map(|p| p.id));
        }
        for id in &ids {
            let _ = rt
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.log_dir);
        ids.len()
    }
}
