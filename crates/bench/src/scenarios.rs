//! The scenarios. Latency scenarios run their endpoints alternately, one iteration each in turn
//! (the order flipping every round), so both share the machine's noise; the rest of the time
//! (setup, teardown) is untimed unless it is a figure of its own.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;

use super::endpoint::{Endpoint, Pod};
use super::memory::{self, RuntimeMemory};
use super::progress::Progress;
use super::results::{Results, Unit, ms};
use super::workload::{LEAVES_A_CHILD, PidShape};

mod floor;
mod userns;
mod verbs;

/// A scenario, by the name `--scenarios` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// RunPodSandbox latency.
    Runp,
    /// CreateContainer + StartContainer latency in a ready pod.
    CreateStart,
    /// A whole pod: run, create, start, stop, remove.
    Lifecycle,
    /// A pod sharing its PID namespace: run, and containers whose main process leaves a child.
    SharedPid,
    /// Clients at once, each through full lifecycles (run, create, start, exec, stop, remove) of
    /// pods sharing their PID namespace.
    Clients,
    /// N pods with one container each, started at once, until all run.
    Concurrent,
    /// ListContainers / ListPodSandbox with many containers present.
    List,
    /// Cold pull of the big image.
    Pull,
    /// One latency row per remaining CRI verb (status, list, stats, update, exec, log reopen,
    /// image removal) against a running container.
    Verbs,
    /// Pod + container start in a user namespace of its own, beside the same in the host's.
    Userns,
    /// The kernel's own cost of a pod's parts, with no runtime (`floor.rs`), beside the runtimes'.
    Floor,
    /// Resident memory: daemon idle, with N pods, per pod.
    Memory,
}

impl Scenario {
    /// The scenario's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Runp => "runp",
            Scenario::CreateStart => "create-start",
            Scenario::Lifecycle => "lifecycle",
            Scenario::SharedPid => "shared-pid",
            Scenario::Clients => "clients",
            Scenario::Concurrent => "concurrent",
            Scenario::List => "list",
            Scenario::Pull => "pull",
            Scenario::Verbs => "verbs",
            Scenario::Userns => "userns",
            Scenario::Floor => "floor",
            Scenario::Memory => "memory",
        }
    }
}

/// How much of each scenario to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Timed iterations of the latency scenarios, per endpoint.
    pub iterations: usize,
    /// Untimed iterations before them.
    pub warmup: usize,
    /// Rounds of the heavy scenarios (concurrent, pull), per endpoint.
    pub rounds: usize,
    /// Pods of the concurrent and memory scenarios.
    pub pods: usize,
    /// Containers present for the list scenario.
    pub list_containers: usize,
    /// Pods those containers are spread over.
    pub list_pods: usize,
    /// Image the containers run.
    pub image: String,
    /// Image of the cold pull.
    pub pull_image: String,
    /// Pause before memory readings, for the runtimes to settle.
    pub settle: Duration,
    /// Calls at once when setting up or tearing down (untimed).
    pub parallel: usize,
    /// Clients of the clients scenario.
    pub clients: usize,
    /// Lifecycles each of them runs.
    pub lifecycles: usize,
    /// Longest a single step may take before the scenario fails on that endpoint.
    pub step_timeout: Duration,
}

/// One pod through its whole life as kubelet drives it, with an exec (a probe) in between.
async fn one_lifecycle(ep: &Endpoint, name: &str, image: &str) -> Result<()> {
    let pod = ep.run_pod_shaped(name, PidShape::Shared).await?;
    let work = async {
        let id = ep.create_container(&pod, "c", image).await?;
        ep.start_container(&id).await?;
        ep.exec_sync(&id, &["true"]).await?;
        ep.stop_container(&id).await?;
        ep.remove_container(&id).await
    }
    .await;
    let teardown = ep.teardown(&pod).await;
    work?;
    teardown
}

/// Samples one step produced: figure name, unit, value.
type Samples = Vec<(String, Unit, f64)>;

/// A run: the endpoints, the settings and what has been measured so far.
pub struct Bench<'a> {
    /// Endpoints, subject first.
    pub endpoints: &'a [Endpoint],
    /// Settings.
    pub settings: Settings,
    /// Figures so far.
    pub results: Results,
    /// The display.
    pub progress: Progress,
    /// Memory read before the run did anything, per endpoint.
    pub at_start: Vec<RuntimeMemory>,
}

/// The endpoints' order in a round: rotated by one each round.
pub fn order(round: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| (i + round) % n.max(1)).collect()
}

impl Bench<'_> {
    /// Runs one scenario.
    pub async fn run(&mut self, scenario: Scenario) {
        self.progress.note(&format!("scenario {}", scenario.name()));
        match scenario {
            Scenario::Runp => self.runp().await,
            Scenario::CreateStart => self.create_start().await,
            Scenario::Lifecycle => self.lifecycle().await,
            Scenario::SharedPid => self.shared_pid().await,
            Scenario::Clients => self.clients().await,
            Scenario::Concurrent => self.concurrent().await,
            Scenario::List => self.list().await,
            Scenario::Pull => self.pull().await,
            Scenario::Verbs => self.verbs().await,
            Scenario::Userns => self.userns().await,
            Scenario::Floor => self.floor().await,
            Scenario::Memory => self.memory().await,
        }
        self.record_daemon_growth(scenario);
    }

    /// The daemons' RSS after each scenario: where memory grows and whether it comes back.
    fn record_daemon_growth(&mut self, scenario: Scenario) {
        let endpoints = self.endpoints;
        for ep in endpoints {
            let daemon = memory::socket_owner(&ep.socket).and_then(memory::process_memory);
            if let Some(d) = daemon {
                let name = format!("after {}", scenario.name());
                self.results.single(
                    "daemon RSS over the run",
                    &name,
                    Unit::Bytes,
                    ep.name(),
                    d.rss as f64,
                );
            }
        }
    }

    /// Runs `step` for `warmup + timed` rounds on every endpoint alternately and records the
    /// samples of the timed rounds. A failing endpoint drops out of the scenario.
    async fn interleave(
        &mut self,
        scenario: &'static str,
        warmup: usize,
        timed: usize,
        step: impl AsyncFn(&Endpoint, usize) -> Result<Samples>,
    ) {
        let endpoints = self.endpoints;
        let total = warmup + timed;
        for round in 0..total {
            for i in order(round, endpoints.len()) {
                let ep = &endpoints[i];
                if self.results.failed(scenario, ep.name()) {
                    continue;
                }
                let outcome =
                    tokio::time::timeout(self.settings.step_timeout, step(ep, round)).await;
                match outcome.unwrap_or_else(|_| {
                    Err(anyhow!(
                        "step took longer than {:?}",
                        self.settings.step_timeout
                    ))
                }) {
                    Ok(samples) if round >= warmup => {
                        for (name, unit, value) in samples {
                            self.results.sample(scenario, &name, unit, ep.name(), value);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.progress
                            .note(&format!("{scenario} failed on {}: {e:#}", ep.name()));
                        self.results.fail(scenario, ep.name(), format!("{e:#}"));
                        ep.sweep().await;
                    }
                }
                self.progress.step(scenario, ep.name(), round + 1, total);
            }
        }
    }

    async fn runp(&mut self) {
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        self.interleave("runp", warmup, timed, async |ep, round| {
            let t = Instant::now();
            let pod = ep.run_pod(&format!("runp-{round}")).await?;
            let took = t.elapsed();
            ep.teardown(&pod).await?;
            Ok(vec![("RunPodSandbox".into(), Unit::Ms, ms(took))])
        })
        .await;
    }

    async fn create_start(&mut self) {
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image = self.settings.image.clone();
        self.interleave("create-start", warmup, timed, async |ep, round| {
            let pod = ep.run_pod(&format!("cs-{round}")).await?;
            let timed = async {
                let t0 = Instant::now();
                let id = ep.create_container(&pod, "c", &image).await?;
                let t1 = Instant::now();
                ep.start_container(&id).await?;
                let t2 = Instant::now();
                Ok::<_, anyhow::Error>(vec![
                    ("CreateContainer".into(), Unit::Ms, ms(t1 - t0)),
                    ("StartContainer".into(), Unit::Ms, ms(t2 - t1)),
                    (
                        "CreateContainer+StartContainer".into(),
                        Unit::Ms,
                        ms(t2 - t0),
                    ),
                ])
            }
            .await;
            let teardown = ep.teardown(&pod).await;
            let samples = timed?;
            teardown?;
            Ok(samples)
        })
        .await;
    }

    async fn lifecycle(&mut self) {
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image = self.settings.image.clone();
        self.interleave("lifecycle", warmup, timed, async |ep, round| {
            let t0 = Instant::now();
            let pod = ep.run_pod(&format!("life-{round}")).await?;
            let rest = async {
                let id = ep.create_container(&pod, "c", &image).await?;
                ep.start_container(&id).await?;
                let t1 = Instant::now();
                ep.stop_container(&id).await?;
                let t2 = Instant::now();
                ep.remove_container(&id).await?;
                let t3 = Instant::now();
                ep.stop_pod(&pod).await?;
                ep.remove_pod(&pod).await?;
                let t4 = Instant::now();
                Ok::<_, anyhow::Error>(vec![
                    (
                        "run, create, start, stop, remove".into(),
                        Unit::Ms,
                        ms(t4 - t0),
                    ),
                    (
                        "  StopContainer (SIGTERM obeyed)".into(),
                        Unit::Ms,
                        ms(t2 - t1),
                    ),
                    ("  RemoveContainer".into(), Unit::Ms, ms(t3 - t2)),
                    (
                        "  StopPodSandbox+RemovePodSandbox".into(),
                        Unit::Ms,
                        ms(t4 - t3),
                    ),
                ])
            }
            .await;
            if rest.is_err() {
                let _ = ep.teardown(&pod).await;
            }
            rest
        })
        .await;
    }

    /// The pod shape crictl makes by default and kubelet for `shareProcessNamespace: true`: no
    /// kernel ends what a container's main process leaves behind, so the runtime must.
    async fn shared_pid(&mut self) {
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        let image = self.settings.image.clone();
        self.interleave("shared-pid", warmup, timed, async |ep, round| {
            let t0 = Instant::now();
            let pod = ep
                .run_pod_shaped(&format!("spid-{round}"), PidShape::Shared)
                .await?;
            let runp = t0.elapsed();
            let rest = async {
                let id = ep
                    .create_container_running(&pod, "leaves", &image, Some(&LEAVES_A_CHILD))
                    .await?;
                ep.start_container(&id).await?;
                let t1 = Instant::now();
                let code = ep.wait_exited(&id).await?;
                let exit_seen = t1.elapsed();
                if code != 3 {
                    bail!("the container exited with {code}, not 3");
                }
                let id = ep.create_container(&pod, "svc", &image).await?;
                ep.start_container(&id).await?;
                let t2 = Instant::now();
                ep.stop_container(&id).await?;
                let stop = t2.elapsed();
                Ok::<_, anyhow::Error>(vec![
                    ("RunPodSandbox (shared PID)".into(), Unit::Ms, ms(runp)),
                    (
                        "exit seen, main process left a child".into(),
                        Unit::Ms,
                        ms(exit_seen),
                    ),
                    (
                        "StopContainer, main process has a child".into(),
                        Unit::Ms,
                        ms(stop),
                    ),
                ])
            }
            .await;
            let teardown = ep.teardown(&pod).await;
            let samples = rest?;
            teardown?;
            Ok(samples)
        })
        .await;
    }

    /// Several clients at once, as a busy node's kubelet, probes and tools are: each runs
    /// lifecycles one after the other, with an exec and a stop of a main process with a child.
    async fn clients(&mut self) {
        let rounds = self.settings.rounds;
        let (clients, each) = (self.settings.clients, self.settings.lifecycles);
        let image = self.settings.image.clone();
        self.interleave("clients", 0, rounds, async |ep, round| {
            let t = Instant::now();
            let runs = (0..clients).map(|c| {
                let image = image.clone();
                async move {
                    for i in 0..each {
                        one_lifecycle(ep, &format!("cl{round}-{c}-{i}"), &image).await?;
                    }
                    Ok::<_, anyhow::Error>(())
                }
            });
            let results = futures::future::join_all(runs).await;
            let took = t.elapsed();
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
            Ok(vec![(
                format!("{clients} clients x {each} lifecycles with exec and stop, shared PID"),
                Unit::Ms,
                ms(took),
            )])
        })
        .await;
    }

    async fn concurrent(&mut self) {
        let rounds = self.settings.rounds;
        let (pods, image) = (self.settings.pods, self.settings.image.clone());
        self.interleave("concurrent", 0, rounds, async |ep, round| {
            let t = Instant::now();
            let (made, result) = start_pods(ep, pods, &format!("conc{round}"), &image, pods).await;
            let ids: HashSet<String> = made.iter().map(|p| p.id.clone()).collect();
            let running = match result {
                Ok(()) => ep.running_in(&ids).await,
                Err(e) => Err(e),
            };
            let took = t.elapsed();
            let t = Instant::now();
            let teardown = ep.teardown_all(&made, pods).await;
            let teardown_took = t.elapsed();
            let running = running?;
            teardown?;
            if running != pods {
                bail!(
                    "{running} of {pods} containers running after all StartContainer calls returned"
                );
            }
            Ok(vec![
                (
                    format!("{pods} pods x 1 container at once, all running"),
                    Unit::Ms,
                    ms(took),
                ),
                (
                    format!("{pods} pods torn down at once"),
                    Unit::Ms,
                    ms(teardown_took),
                ),
            ])
        })
        .await;
    }

    async fn list(&mut self) {
        const S: &str = "list";
        let (pods, containers) = (
            self.settings.list_pods.max(1),
            self.settings.list_containers,
        );
        let endpoints = self.endpoints;
        let mut made: Vec<Vec<Pod>> = Vec::new();
        for ep in endpoints {
            let t = Instant::now();
            let setup = tokio::time::timeout(
                self.settings.step_timeout * 4,
                create_many(
                    ep,
                    pods,
                    containers,
                    &self.settings.image,
                    self.settings.parallel,
                    &self.progress,
                ),
            )
            .await
            .unwrap_or_else(|_| {
                (
                    Vec::new(),
                    Err(anyhow!("creating {containers} containers took too long")),
                )
            });
            let (pod_list, result) = setup;
            match result {
                Ok(()) => self.results.single(
                    S,
                    &format!(
                        "create {containers} containers ({} at a time)",
                        self.settings.parallel
                    ),
                    Unit::Ms,
                    ep.name(),
                    ms(t.elapsed()),
                ),
                Err(e) => self.results.fail(S, ep.name(), format!("{e:#}")),
            }
            made.push(pod_list);
        }
        let (warmup, timed) = (self.settings.warmup, self.settings.iterations);
        self.interleave(S, warmup, timed, async |ep, _| {
            let (containers_took, n_containers) = ep.time_list_containers().await?;
            let (pods_took, n_pods) = ep.time_list_pods().await?;
            if n_containers < containers || n_pods < pods {
                bail!("listed {n_containers} containers and {n_pods} pods, expected at least {containers} and {pods}");
            }
            Ok(vec![
                (format!("ListContainers, {containers} present"), Unit::Ms, ms(containers_took)),
                (format!("ListPodSandbox, {pods} present"), Unit::Ms, ms(pods_took)),
            ])
        })
        .await;
        for (ep, pods) in endpoints.iter().zip(made) {
            self.progress
                .note(&format!("removing the list pods on {}", ep.name()));
            if let Err(e) = ep.teardown_all(&pods, self.settings.parallel).await {
                self.progress
                    .note(&format!("teardown on {}: {e:#}", ep.name()));
                ep.sweep().await;
            }
        }
    }

    async fn pull(&mut self) {
        let rounds = self.settings.rounds;
        let image = self.settings.pull_image.clone();
        let name = format!("cold pull of {image}");
        self.interleave("pull", 0, rounds, async |ep, _| {
            if let Some((id, _)) = ep.image_status(&image).await? {
                ep.remove_image(&id).await?;
            }
            if ep.image_status(&image).await?.is_some() {
                bail!("{image} is still present after RemoveImage");
            }
            let t = Instant::now();
            ep.pull(&image).await?;
            let took = t.elapsed();
            let size = ep.image_status(&image).await?.map_or(0, |(_, size)| size);
            Ok(vec![
                (name.clone(), Unit::Ms, ms(took)),
                ("  image size as reported".into(), Unit::Bytes, size as f64),
            ])
        })
        .await;
        for ep in self.endpoints {
            if let Ok(Some((id, _))) = ep.image_status(&image).await {
                let _ = ep.remove_image(&id).await;
            }
        }
    }

    async fn memory(&mut self) {
        const S: &str = "memory";
        let n = self.settings.pods;
        let endpoints = self.endpoints;
        for (i, ep) in endpoints.iter().enumerate() {
            let name = ep.name();
            if let Some(start) = self.at_start.get(i).cloned() {
                self.record_daemon(
                    S,
                    "daemon RSS, idle at start",
                    "daemon PSS, idle at start",
                    name,
                    &start,
                );
            }
            let idle = self.read_memory(ep).await;
            self.record_daemon(
                S,
                "daemon RSS, idle after the other scenarios",
                "daemon PSS, idle after",
                name,
                &idle,
            );
            let (made, result) =
                start_pods(ep, n, "mem", &self.settings.image, self.settings.parallel).await;
            if let Err(e) = result {
                self.results.fail(S, name, format!("{e:#}"));
                let _ = ep.teardown_all(&made, self.settings.parallel).await;
                continue;
            }
            let busy = self.read_memory(ep).await;
            self.progress.note(&format!(
                "{name} with {n} pods: helpers {}",
                busy.helper_names()
            ));
            let per_pod = |total: u64, base: u64| total.saturating_sub(base) as f64 / n as f64;
            let r = &mut self.results;
            r.single(
                S,
                &format!("daemon RSS, {n} pods"),
                Unit::Bytes,
                name,
                busy.daemon.as_ref().map_or(0, |d| d.rss) as f64,
            );
            r.single(
                S,
                &format!("runtime RSS, {n} pods (daemon+helpers)"),
                Unit::Bytes,
                name,
                busy.rss() as f64,
            );
            r.single(
                S,
                &format!("runtime PSS, {n} pods (daemon+helpers)"),
                Unit::Bytes,
                name,
                busy.pss() as f64,
            );
            r.single(
                S,
                "RSS added per pod",
                Unit::Bytes,
                name,
                per_pod(busy.rss(), idle.rss()),
            );
            r.single(
                S,
                "PSS added per pod",
                Unit::Bytes,
                name,
                per_pod(busy.pss(), idle.pss()),
            );
            r.single(
                S,
                "helper processes per pod",
                Unit::Count,
                name,
                busy.helpers.len() as f64 / n as f64,
            );
            for (kind, rss, pss) in busy.helper_averages() {
                r.single(S, &format!("  {kind}: RSS each"), Unit::Bytes, name, rss);
                r.single(S, &format!("  {kind}: PSS each"), Unit::Bytes, name, pss);
            }
            if let Err(e) = ep.teardown_all(&made, self.settings.parallel).await {
                self.results.fail(S, name, format!("teardown: {e:#}"));
                continue;
            }
            let after = self.read_memory(ep).await;
            self.record_daemon(
                S,
                "daemon RSS, idle after the pods left",
                "daemon PSS, after the pods left",
                name,
                &after,
            );
        }
    }

    fn record_daemon(
        &mut self,
        s: &str,
        rss_name: &str,
        pss_name: &str,
        endpoint: &str,
        m: &RuntimeMemory,
    ) {
        if let Some(d) = &m.daemon {
            self.results
                .single(s, rss_name, Unit::Bytes, endpoint, d.rss as f64);
            self.results
                .single(s, pss_name, Unit::Bytes, endpoint, d.pss as f64);
        } else {
            self.progress
                .note(&format!("no process listens on {}'s socket", endpoint));
        }
    }

    /// Memory after a settling pause: the median (by total RSS) of three readings a second apart.
    async fn read_memory(&self, ep: &Endpoint) -> RuntimeMemory {
        tokio::time::sleep(self.settings.settle).await;
        let mut readings = Vec::new();
        for i in 0..3 {
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            readings.push(read_memory_now(ep).await);
        }
        readings.sort_by_key(RuntimeMemory::rss);
        readings.swap_remove(1)
    }
}

/// One memory reading of an endpoint, its containers' workloads left out.
pub async fn read_memory_now(ep: &Endpoint) -> RuntimeMemory {
    let workloads = ep.container_ids().await.unwrap_or_default();
    let scope = memory::Scope {
        socket: &ep.socket,
        cgroup: ep.spec.runtime_cgroup.as_deref(),
    };
    memory::measure(&scope, &workloads)
}

/// Starts `n` pods with one running container each, `parallel` at a time. Returns the pods made
/// (also when something failed, for the teardown) and the first error.
async fn start_pods(
    ep: &Endpoint,
    n: usize,
    prefix: &str,
    image: &str,
    parallel: usize,
) -> (Vec<Pod>, Result<()>) {
    let one = async |i: usize| -> (Option<Pod>, Result<()>) {
        let pod = match ep.run_pod(&format!("{prefix}-{i}")).await {
            Ok(p) => p,
            Err(e) => return (None, Err(e)),
        };
        let started = async {
            let id = ep.create_container(&pod, "c", image).await?;
            ep.start_container(&id).await
        }
        .await;
        (Some(pod), started)
    };
    let outcomes: Vec<(Option<Pod>, Result<()>)> = futures::stream::iter(0..n)
        .map(one)
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut pods = Vec::new();
    let mut first_error = Ok(());
    for (pod, result) in outcomes {
        pods.extend(pod);
        if first_error.is_ok() {
            first_error = result;
        }
    }
    (pods, first_error)
}

/// Makes `pods` pods holding `containers` created (not started) containers between them.
async fn create_many(
    ep: &Endpoint,
    pods: usize,
    containers: usize,
    image: &str,
    parallel: usize,
    progress: &Progress,
) -> (Vec<Pod>, Result<()>) {
    let mut made = Vec::new();
    for i in 0..pods {
        match ep.run_pod(&format!("list-{i}")).await {
            Ok(p) => made.push(p),
            Err(e) => return (made, Err(e)),
        }
    }
    let result = create_containers(ep, &made, containers, image, parallel, progress).await;
    (made, result)
}

/// Creates `containers` containers spread over `pods`, `parallel` at a time.
async fn create_containers(
    ep: &Endpoint,
    pods: &[Pod],
    containers: usize,
    image: &str,
    parallel: usize,
    progress: &Progress,
) -> Result<()> {
    let one = async |i: usize| {
        let pod = &pods[i % pods.len()];
        ep.create_container(pod, &format!("c{i}"), image)
            .await
            .with_context(|| format!("container {i}"))
    };
    let mut stream = futures::stream::iter(0..containers)
        .map(one)
        .buffer_unordered(parallel.max(1));
    let mut done = 0;
    while let Some(result) = stream.next().await {
        result?;
        done += 1;
        if done % 10 == 0 || done == containers {
            progress.step("list setup", ep.name(), done, containers);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_alternates() {
        assert_eq!(order(0, 2), [0, 1]);
        assert_eq!(order(1, 2), [1, 0]);
        assert_eq!(order(2, 3), [2, 0, 1]);
        assert_eq!(order(5, 1), [0]);
    }
}
