//! The `floor` scenario: the kernel's own cost of a pod's namespaces, an overlay root, a cgroup
//! and an exec in them (`crate::floor`, no runtime at all), timed by this process in the same
//! rounds as the runtimes' RunPodSandbox + CreateContainer + StartContainer of a kubelet-shaped
//! pod, so the table shows how far above the floor each runtime is. The floor rows are in the
//! subject's column; the runtime rows in each endpoint's.

use anyhow::Context;

use super::Bench;
use crate::results::{Unit, ms};

impl Bench<'_> {
    pub(super) async fn floor(&mut self) {
        const S: &str = "floor";
        let Some(subject) = self.endpoints.first() else {
            return;
        };
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image_dir =
            std::env::temp_dir().join(format!("longshore-floor-image-{}", std::process::id()));
        let busybox = match crate::floor::make_image(&image_dir) {
            Ok(dir) => dir,
            Err(e) => {
                self.results.fail(S, subject.name(), format!("{e:#}"));
                return;
            }
        };
        let mounts = crate::cgroups::cgroup_mounts();
        let own = crate::cgroups::own_cgroup();
        for round in 0..warmup + timed {
            let dir = std::env::temp_dir().join(format!("longshore-floor-{}", std::process::id()));
            let cgroup = format!("{}/longshore-floor-{round}", own.trim_end_matches('/'));
            let (b, m) = (busybox.clone(), mounts.clone());
            let times =
                tokio::task::spawn_blocking(move || crate::floor::one_round(&dir, &b, &m, &cgroup))
                    .await
                    .context("the floor's task")
                    .and_then(|r| r);
            match times {
                Ok(t) if round >= warmup => {
                    let name = subject.name();
                    let r = &mut self.results;
                    r.sample(
                        S,
                        "floor: net/ipc/uts made and pinned",
                        Unit::Ms,
                        name,
                        ms(t.namespaces),
                    );
                    r.sample(
                        S,
                        "floor: overlay root mounted",
                        Unit::Ms,
                        name,
                        ms(t.overlay),
                    );
                    r.sample(
                        S,
                        "floor: cgroup in every hierarchy",
                        Unit::Ms,
                        name,
                        ms(t.cgroup),
                    );
                    r.sample(
                        S,
                        "floor: busybox true run in them",
                        Unit::Ms,
                        name,
                        ms(t.exec),
                    );
                    let all = t.namespaces + t.overlay + t.cgroup + t.exec;
                    r.sample(S, "floor: all four", Unit::Ms, name, ms(all));
                }
                Ok(_) => {}
                Err(e) => {
                    self.progress.note(&format!("floor failed: {e:#}"));
                    self.results.fail(S, subject.name(), format!("{e:#}"));
                    let _ = std::fs::remove_dir_all(&image_dir);
                    return;
                }
            }
            self.progress.step(S, "floor", round + 1, warmup + timed);
        }
        let _ = std::fs::remove_dir_all(&image_dir);
        self.pod_and_container_start(S, warmup, timed).await;
    }

    /// What each runtime takes for the same: a kubelet-shaped pod with one container started.
    async fn pod_and_container_start(
        &mut self,
        scenario: &'static str,
        warmup: usize,
        timed: usize,
    ) {
        let image = self.settings.image.clone();
        self.interleave(scenario, warmup, timed, async |ep, round| {
            let took = super::userns::start(ep, &format!("floor-{round}"), &image, None).await?;
            Ok(vec![(
                "runtime: RunPodSandbox+CreateContainer+StartContainer".into(),
                Unit::Ms,
                ms(took),
            )])
        })
        .await;
    }
}
