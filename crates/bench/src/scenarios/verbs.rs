//! The `verbs` scenario: one latency row per CRI verb that the other scenarios do not time, each
//! against one pod with one running container per endpoint (made before, untimed), so the table
//! shows every verb side by side with the reference.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use longshore_cri_api::v1::{
    ContainerFilter, ContainerStatsFilter, ContainerStatsRequest, ContainerStatusRequest,
    ImageFsInfoRequest, ImageSpec, ImageStatusRequest, LinuxContainerResources,
    ListContainerStatsRequest, ListContainersRequest, ListImagesRequest, PodSandboxStatusRequest,
    ReopenContainerLogRequest, StatusRequest, UpdateContainerResourcesRequest,
};

use super::{Bench, Samples};
use crate::endpoint::{Endpoint, Pod};
use crate::results::{Unit, ms};

/// A small image that is removed and pulled again every round for the RemoveImage row (the
/// pull is untimed). The test registry has it; it is not the containers' image.
const REMOVABLE_IMAGE: &str = "registry.k8s.io/k8s-staging-cri-tools/test-image-1:latest";

/// The fixture of one endpoint: its pod and the running container in it.
struct Fixture {
    pod: Pod,
    container: String,
}

impl Bench<'_> {
    pub(super) async fn verbs(&mut self) {
        const S: &str = "verbs";
        let mut fixtures: HashMap<String, Fixture> = HashMap::new();
        for ep in self.endpoints {
            match fixture(ep, &self.settings.image).await {
                Ok(f) => {
                    fixtures.insert(ep.name().to_string(), f);
                }
                Err(e) => self.results.fail(S, ep.name(), format!("{e:#}")),
            }
        }
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image = self.settings.image.clone();
        let fixtures_ref = &fixtures;
        self.interleave(S, warmup, timed, async |ep, round| {
            let f = fixtures_ref
                .get(ep.name())
                .context("no pod and container were made for this endpoint")?;
            one_round(ep, f, &image, round).await
        })
        .await;
        for ep in self.endpoints {
            if let Some(f) = fixtures.get(ep.name())
                && let Err(e) = ep.teardown(&f.pod).await
            {
                self.progress
                    .note(&format!("teardown on {}: {e:#}", ep.name()));
                ep.sweep().await;
            }
        }
    }
}

/// The pod, a running container in it, and the removable image present.
async fn fixture(ep: &Endpoint, image: &str) -> Result<Fixture> {
    let pod = ep.run_pod("verbs").await?;
    let made = async {
        let container = ep.create_container(&pod, "c", image).await?;
        ep.start_container(&container).await?;
        ep.ensure_image(REMOVABLE_IMAGE).await?;
        Ok::<_, anyhow::Error>(container)
    }
    .await;
    match made {
        Ok(container) => Ok(Fixture { pod, container }),
        Err(e) => {
            let _ = ep.teardown(&pod).await;
            Err(e)
        }
    }
}

/// Times `call` and adds it to `rows` as `name`.
async fn timed<T>(
    rows: &mut Samples,
    name: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let t = Instant::now();
    let out = call.await.with_context(|| name.to_string())?;
    rows.push((name.to_string(), Unit::Ms, ms(t.elapsed())));
    Ok(out)
}

fn image_spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

/// Every verb once, in a fixed order.
async fn one_round(ep: &Endpoint, f: &Fixture, image: &str, round: usize) -> Result<Samples> {
    let mut rows = Samples::new();
    let (mut rt, mut img) = (ep.client.runtime.clone(), ep.client.image.clone());
    let id = f.container.clone();
    timed(&mut rows, "Version", ep.version()).await?;
    timed(&mut rows, "Status", async {
        Ok(rt.status(StatusRequest { verbose: false }).await?)
    })
    .await?;
    timed(&mut rows, "ImageFsInfo", async {
        Ok(img.image_fs_info(ImageFsInfoRequest {}).await?)
    })
    .await?;
    timed(&mut rows, "ListImages", async {
        Ok(img.list_images(ListImagesRequest { filter: None }).await?)
    })
    .await?;
    timed(&mut rows, "ImageStatus", async {
        let req = ImageStatusRequest {
            image: image_spec(image),
            verbose: false,
        };
        Ok(img.image_status(req).await?)
    })
    .await?;
    timed(&mut rows, "PodSandboxStatus", async {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: f.pod.id.clone(),
            verbose: false,
        };
        Ok(rt.pod_sandbox_status(req).await?)
    })
    .await?;
    timed(&mut rows, "ContainerStatus", async {
        let req = ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        };
        Ok(rt.container_status(req).await?)
    })
    .await?;
    timed(&mut rows, "ListContainers, one pod's", async {
        let filter = ContainerFilter {
            pod_sandbox_id: f.pod.id.clone(),
            ..Default::default()
        };
        let req = ListContainersRequest {
            filter: Some(filter),
        };
        Ok(rt.list_containers(req).await?)
    })
    .await?;
    timed(&mut rows, "ContainerStats", async {
        let req = ContainerStatsRequest {
            container_id: id.clone(),
        };
        Ok(rt.container_stats(req).await?)
    })
    .await?;
    timed(&mut rows, "ListContainerStats, one pod's", async {
        let filter = ContainerStatsFilter {
            pod_sandbox_id: f.pod.id.clone(),
            ..Default::default()
        };
        let req = ListContainerStatsRequest {
            filter: Some(filter),
        };
        Ok(rt.list_container_stats(req).await?)
    })
    .await?;
    timed(&mut rows, "UpdateContainerResources", async {
        // kubelet sends the whole set; the shares alternate so every call changes something.
        let resources = LinuxContainerResources {
            cpu_period: 100_000,
            cpu_shares: 2 + 2 * (round % 2) as i64,
            ..Default::default()
        };
        let req = UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(resources),
            ..Default::default()
        };
        Ok(rt.update_container_resources(req).await?)
    })
    .await?;
    timed(&mut rows, "ExecSync (true)", ep.exec_sync(&id, &["true"])).await?;
    timed(&mut rows, "ReopenContainerLog", async {
        let req = ReopenContainerLogRequest {
            container_id: id.clone(),
        };
        Ok(rt.reopen_container_log(req).await?)
    })
    .await?;
    remove_image_row(ep, &mut rows).await?;
    Ok(rows)
}

/// RemoveImage of the small image, then its pull again (untimed) for the next round.
async fn remove_image_row(ep: &Endpoint, rows: &mut Samples) -> Result<()> {
    let Some((id, _)) = ep.image_status(REMOVABLE_IMAGE).await? else {
        bail!("{REMOVABLE_IMAGE} is not present before RemoveImage");
    };
    timed(rows, "RemoveImage", ep.remove_image(&id)).await?;
    ep.pull(REMOVABLE_IMAGE).await?;
    Ok(())
}
