//! The `userns` scenario: a pod and its container started in a user namespace of their own
//! (`hostUsers: false`: the namespace, idmapped views of the layers) side by side with the same
//! pod in the host's. Endpoints whose RuntimeStatus does not offer user namespaces are skipped
//! (containerd 1.6 does not).

use std::time::Instant;

use anyhow::Result;
use longshore_cri_api::v1::StatusRequest;

use super::{Bench, Samples};
use crate::endpoint::Endpoint;
use crate::results::{Unit, ms};
use crate::workload::PidShape;

/// kubelet allocates ranges of 65536 from 65536 up; the bench takes them from this one on,
/// far from any id a test or a user holds.
const FIRST_RANGE: u32 = 1000;

impl Bench<'_> {
    pub(super) async fn userns(&mut self) {
        const S: &str = "userns";
        for ep in self.endpoints {
            match offers_user_namespaces(ep).await {
                Ok(true) => {}
                Ok(false) => self.results.fail(
                    S,
                    ep.name(),
                    "its RuntimeStatus offers no user namespaces".into(),
                ),
                Err(e) => self.results.fail(S, ep.name(), format!("{e:#}")),
            }
        }
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image = self.settings.image.clone();
        self.interleave(S, warmup, timed, async |ep, round| {
            let base = (FIRST_RANGE + (round % 1000) as u32) * 65536;
            let own = start(ep, &format!("userns-{round}"), &image, Some(base)).await?;
            let host = start(ep, &format!("hostns-{round}"), &image, None).await?;
            Ok::<Samples, anyhow::Error>(vec![
                (
                    "run, create, start: own user namespace".into(),
                    Unit::Ms,
                    ms(own),
                ),
                (
                    "run, create, start: host's user namespace".into(),
                    Unit::Ms,
                    ms(host),
                ),
            ])
        })
        .await;
    }
}

async fn offers_user_namespaces(ep: &Endpoint) -> Result<bool> {
    let mut rt = ep.client.runtime.clone();
    let status = rt
        .status(StatusRequest { verbose: false })
        .await?
        .into_inner();
    Ok(status
        .runtime_handlers
        .iter()
        .find(|h| h.name.is_empty())
        .and_then(|h| h.features.as_ref())
        .is_some_and(|f| f.user_namespaces))
}

/// RunPodSandbox + CreateContainer + StartContainer, timed; the pod is torn down after.
pub(super) async fn start(
    ep: &Endpoint,
    name: &str,
    image: &str,
    userns_base: Option<u32>,
) -> Result<std::time::Duration> {
    let t = Instant::now();
    let pod = ep
        .run_pod_in(name, PidShape::PerContainer, userns_base)
        .await?;
    let made = async {
        let id = ep.create_container(&pod, "c", image).await?;
        ep.start_container(&id).await
    }
    .await;
    let took = t.elapsed();
    let teardown = ep.teardown(&pod).await;
    made?;
    teardown?;
    Ok(took)
}
