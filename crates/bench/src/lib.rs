//! `longshore-bench`: measures CRI runtimes side by side, as an operator would, over their CRI
//! sockets, so the same code measures Longshore, containerd or CRI-O. Endpoints run alternately
//! in the same run on the same machine; one table compares them.
//!
//! Latencies are of the gRPC calls themselves (no crictl process in the way). Memory is read from
//! /proc: the process listening on the socket is the daemon; with `--runtime-cgroup`, every other
//! process in that cgroup except the containers' workloads counts as the runtime's helpers.

// The bench tool is not the daemon: sleeping there blocks no async worker.
#![allow(clippy::disallowed_methods)]
mod cgroups;
mod endpoint;
mod floor;
mod memory;
mod progress;
mod report;
mod results;
mod scenarios;
mod stats;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use endpoint::{Endpoint, EndpointSpec};
use report::{EndpointInfo, Machine, Report};
use scenarios::{Bench, Scenario, Settings};

/// Every scenario, in the order they run (memory last, so "idle after" follows real work).
const ALL_SCENARIOS: &str =
    "runp,create-start,lifecycle,shared-pid,clients,concurrent,list,pull,verbs,userns,floor,memory";

/// `longshore-bench` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// A CRI endpoint as NAME=unix:///path.sock. Repeat to compare: the first is the subject,
    /// ratios are its p50 over each other's.
    #[arg(long = "endpoint", required = true, value_name = "NAME=URI", value_parser = parse_named)]
    pub endpoints: Vec<(String, String)>,
    /// kubelet-style cgroup parent for an endpoint's pods, as NAME=PATH (each pod gets
    /// PATH/pod<uid>, removed after the pod when it lies under the bench's own cgroup).
    #[arg(long = "cgroup-parent", value_name = "NAME=PATH", value_parser = parse_named)]
    pub cgroup_parents: Vec<(String, String)>,
    /// The memory cgroup holding all of an endpoint's processes (daemon, shims or monitors,
    /// pause or pod-init, containers), as NAME=PATH as /proc/<pid>/cgroup shows it. Without it
    /// only the daemon's memory is read.
    #[arg(long = "runtime-cgroup", value_name = "NAME=PATH", value_parser = parse_named)]
    pub runtime_cgroups: Vec<(String, String)>,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = ALL_SCENARIOS)]
    pub scenarios: Vec<Scenario>,
    /// Timed iterations of each latency scenario, per endpoint.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Untimed iterations before the latency scenarios.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Rounds of the heavy scenarios (concurrent pods, cold pull), per endpoint.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Pods of the concurrent and memory scenarios.
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Containers present (created, not started) for the list scenario.
    #[arg(long, default_value_t = 500)]
    pub list_containers: usize,
    /// Pods the list scenario's containers are spread over.
    #[arg(long, default_value_t = 10)]
    pub list_pods: usize,
    /// Image the containers run.
    #[arg(long, default_value = workload::BUSYBOX)]
    pub image: String,
    /// Image of the cold-pull scenario (removed before each pull and after the last).
    #[arg(long, default_value = workload::BIG_IMAGE)]
    pub pull_image: String,
    /// Where pod log folders go (one folder per endpoint, removed at the end).
    #[arg(long, default_value = "/tmp/longshore-bench-logs")]
    pub log_dir: PathBuf,
    /// Seconds to wait before memory readings.
    #[arg(long, default_value_t = 2)]
    pub settle: u64,
    /// Clients of the clients scenario.
    #[arg(long, default_value_t = 6)]
    pub clients: usize,
    /// Lifecycles each client of the clients scenario runs.
    #[arg(long, default_value_t = 5)]
    pub lifecycles: usize,
    /// Calls at once during untimed setup and teardown.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Seconds one step may take before its scenario fails on that endpoint.
    #[arg(long, default_value_t = 300)]
    pub step_timeout: u64,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to this file (the table still goes to stdout).
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `NAME=VALUE`, both non-empty.
fn parse_named(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => {
            Ok((name.to_string(), value.to_string()))
        }
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// The endpoints with their per-endpoint options; refuses duplicates and options naming no
/// endpoint.
fn endpoint_specs(args: &BenchArgs) -> Result<Vec<EndpointSpec>> {
    let mut specs: Vec<EndpointSpec> = Vec::new();
    for (name, uri) in &args.endpoints {
        if specs.iter().any(|s| &s.name == name) {
            bail!("endpoint {name:?} is given twice");
        }
        specs.push(EndpointSpec {
            name: name.clone(),
            uri: uri.clone(),
            cgroup_parent: None,
            runtime_cgroup: None,
        });
    }
    for (option, pairs) in [
        ("--cgroup-parent", &args.cgroup_parents),
        ("--runtime-cgroup", &args.runtime_cgroups),
    ] {
        for (name, value) in pairs {
            let Some(spec) = specs.iter_mut().find(|s| &s.name == name) else {
                bail!("{option} names {name:?}, which is no --endpoint");
            };
            let slot = if option == "--cgroup-parent" {
                &mut spec.cgroup_parent
            } else {
                &mut spec.runtime_cgroup
            };
            *slot = Some(value.clone());
        }
    }
    Ok(specs)
}

impl BenchArgs {
    fn settings(&self) -> Settings {
        Settings {
            iterations: self.iterations,
            warmup: self.warmup,
            rounds: self.rounds,
            pods: self.pods.max(1),
            list_containers: self.list_containers,
            list_pods: self.list_pods,
            image: self.image.clone(),
            pull_image: self.pull_image.clone(),
            settle: Duration::from_secs(self.settle),
            parallel: self.parallel.max(1),
            clients: self.clients.max(1),
            lifecycles: self.lifecycles.max(1),
            step_timeout: Duration::from_secs(self.step_timeout.max(1)),
        }
    }

    /// The selected scenarios, once each, in their fixed order.
    fn scenario_list(&self) -> Vec<Scenario> {
        let mut list = self.scenarios.clone();
        list.sort();
        list.dedup();
        list
    }

    fn settings_shown(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "iterations".into(),
                format!("{} (+{} warmup)", self.iterations, self.warmup),
            ),
            ("rounds".into(), self.rounds.to_string()),
            ("pods".into(), self.pods.to_string()),
            (
                "list".into(),
                format!(
                    "{} containers in {} pods",
                    self.list_containers, self.list_pods
                ),
            ),
            (
                "clients".into(),
                format!("{} x {} lifecycles", self.clients, self.lifecycles),
            ),
            ("image".into(), self.image.clone()),
            ("pull image".into(), self.pull_image.clone()),
        ])
    }
}

/// Runs the benchmark and prints the report.
pub fn run(args: BenchArgs) -> Result<()> {
    let specs = endpoint_specs(&args)?;
    // One thread: the bench's own CPU use stays small on a small machine shared with the runtimes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    rt.block_on(run_async(args, specs))
}

async fn run_async(args: BenchArgs, specs: Vec<EndpointSpec>) -> Result<()> {
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let run_id = format!("{:08x}", rand::random::<u32>());
    let mut endpoints = Vec::new();
    let mut infos = Vec::new();
    for spec in specs {
        let ep = Endpoint::connect(spec, &args.log_dir, &run_id).await?;
        let v = ep
            .version()
            .await
            .with_context(|| format!("asking {} for its version", ep.name()))?;
        infos.push(EndpointInfo {
            name: ep.name().to_string(),
            uri: ep.spec.uri.clone(),
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
        });
        endpoints.push(ep);
    }
    let scenarios = args.scenario_list();
    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut at_start = Vec::new();
    for ep in &endpoints {
        at_start.push(scenarios::read_memory_now(ep).await);
    }
    let mut bench = Bench {
        endpoints: &endpoints,
        settings: args.settings(),
        results: Default::default(),
        progress: progress::Progress::new(args.quiet),
        at_start,
    };
    let needs_image = scenarios
        .iter()
        .any(|s| !matches!(s, Scenario::Runp | Scenario::Pull));
    let interrupted = tokio::select! {
        prepared = prepare(&endpoints, &args.image, needs_image) => {
            prepared?;
            tokio::select! {
                () = run_scenarios(&mut bench, &scenarios) => false,
                _ = tokio::signal::ctrl_c() => true,
            }
        }
        _ = tokio::signal::ctrl_c() => true,
    };
    bench.progress.finish();
    for ep in &endpoints {
        let left = ep.sweep().await;
        if left > 0 {
            bench
                .progress
                .note(&format!("removed {left} pods left on {}", ep.name()));
        }
    }
    let _ = std::fs::remove_dir(&args.log_dir);
    let mut settings = args.settings_shown();
    let load: Vec<&str> = load_at_start.split_whitespace().take(3).collect();
    settings.insert("load average at start".into(), load.join(" "));
    let report = Report {
        date,
        machine: Machine::detect(),
        endpoints: infos,
        settings,
        results: &bench.results,
    };
    if let Some(path) = &args.json_file {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if interrupted {
        bail!("interrupted; the figures above are partial");
    }
    Ok(())
}

/// Pulls the containers' image on every endpoint that lacks it (untimed).
async fn prepare(endpoints: &[Endpoint], image: &str, needs_image: bool) -> Result<()> {
    if !needs_image {
        return Ok(());
    }
    for ep in endpoints {
        ep.ensure_image(image)
            .await
            .with_context(|| format!("preparing {}", ep.name()))?;
    }
    Ok(())
}

async fn run_scenarios(bench: &mut Bench<'_>, scenarios: &[Scenario]) {
    for s in scenarios {
        bench.run(*s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn two_endpoints_with_their_cgroups() {
        let args = parse(&[
            "--endpoint",
            "longshore=unix:///run/l.sock",
            "--endpoint",
            "containerd=unix:///run/c.sock",
            "--cgroup-parent",
            "containerd=/bench/containerd/kubepods",
            "--runtime-cgroup",
            "longshore=/bench/longshore",
            "--scenarios",
            "memory,runp,create-start,runp",
            "--iterations",
            "5",
        ])
        .unwrap();
        let specs = endpoint_specs(&args).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "longshore");
        assert_eq!(specs[0].runtime_cgroup.as_deref(), Some("/bench/longshore"));
        assert_eq!(
            specs[1].cgroup_parent.as_deref(),
            Some("/bench/containerd/kubepods")
        );
        assert_eq!(
            args.scenario_list(),
            [Scenario::Runp, Scenario::CreateStart, Scenario::Memory]
        );
        assert_eq!(args.settings().iterations, 5);
        assert_eq!(
            endpoint::socket_path(&specs[1].uri),
            PathBuf::from("/run/c.sock")
        );
    }

    #[test]
    fn every_scenario_by_default() {
        let args = parse(&["--endpoint", "a=/a.sock"]).unwrap();
        assert_eq!(args.scenario_list().len(), 12);
        assert_eq!(args.scenario_list().last(), Some(&Scenario::Memory));
    }

    #[test]
    fn refuses_bad_endpoints_and_options() {
        assert!(parse(&[]).is_err(), "an endpoint is required");
        assert!(parse(&["--endpoint", "noequals"]).is_err());
        assert!(parse(&["--endpoint", "=x"]).is_err());
        assert!(parse(&["--endpoint", "a=/a", "--scenarios", "nope"]).is_err());
        let twice = parse(&["--endpoint", "a=/a", "--endpoint", "a=/b"]).unwrap();
        assert!(endpoint_specs(&twice).is_err());
        let stray = parse(&["--endpoint", "a=/a", "--cgroup-parent", "b=/x"]).unwrap();
        assert!(
            endpoint_specs(&stray)
                .unwrap_err()
                .to_string()
                .contains("no --endpoint")
        );
    }
}
