//! `ListMetricDescriptors`, `ListPodSandboxMetrics` and `StreamPodSandboxMetrics`: cAdvisor's
//! container metrics computed by the runtime (KEP-2371), which kubelet re-exports on
//! `/metrics/cadvisor` when it runs without cAdvisor. The names are in [`metric_descriptors`].
//!
//! [`metric_descriptors`]: super::metric_descriptors

use std::sync::Arc;

use crate::server::RpcError;
use longshore_cgroups::{Psi, Stats};
use prost::Message;
use tracing::warn;

use super::metric_descriptors::{self as m, Desc, descriptors, labels};
use super::stats;
use super::stats::cache::cache;
use super::stats::net_dev::InterfaceCounters;
use super::stats::sample::{Sample, blocking};
use super::{RpcStream, container_stats, lookup, sandbox_stats};
use crate::api::{
    ContainerMetrics, LinuxContainerResources, ListMetricDescriptorsRequest,
    ListMetricDescriptorsResponse, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse,
    Metric, PodSandboxMetrics, StreamPodSandboxMetricsRequest, StreamPodSandboxMetricsResponse,
    UInt64Value,
};
use crate::daemon::Daemon;
use crate::state::{Container, ContainerState, Pod, now_nanos};

/// Pods per `StreamPodSandboxMetrics` message.
const STREAM_CHUNK: usize = 512;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const MICROS_PER_SEC: u64 = 1_000_000;

pub(super) async fn list_metric_descriptors(
    _d: &Arc<Daemon>,
    _req: ListMetricDescriptorsRequest,
) -> Result<ListMetricDescriptorsResponse, RpcError> {
    Ok(ListMetricDescriptorsResponse {
        descriptors: descriptors(),
    })
}

pub(super) async fn list_pod_sandbox_metrics(
    d: &Arc<Daemon>,
    _req: ListPodSandboxMetricsRequest,
) -> Result<ListPodSandboxMetricsResponse, RpcError> {
    let d = d.clone();
    let pod_metrics = blocking(move || all_pod_metrics(&d)).await?;
    Ok(ListPodSandboxMetricsResponse { pod_metrics })
}

pub(super) async fn stream_pod_sandbox_metrics(
    d: &Arc<Daemon>,
    _req: StreamPodSandboxMetricsRequest,
) -> Result<RpcStream<StreamPodSandboxMetricsResponse>, RpcError> {
    let d = d.clone();
    let metrics = blocking(move || all_pod_metrics(&d)).await?;
    let chunks: Vec<Result<StreamPodSandboxMetricsResponse, tonic::Status>> = metrics
        .chunks(STREAM_CHUNK)
        .map(|c| {
            Ok(StreamPodSandboxMetricsResponse {
                pod_sandbox_metrics: c.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

/// Metrics of every ready pod and its running containers.
fn all_pod_metrics(d: &Daemon) -> Vec<PodSandboxMetrics> {
    stats::sample::forget_the_gone(d);
    let pods = sandbox_stats::ready_pods(d, None);
    let networks = sandbox_stats::network_of(&pods);
    let fs = layer_fs(d);
    pods.iter()
        .zip(networks)
        .map(|(pod, network)| pod_metrics(d, pod, network, fs.as_ref()))
        .collect()
}

fn pod_metrics(
    d: &Daemon,
    pod: &Pod,
    network: Option<(i64, Vec<InterfaceCounters>)>,
    fs: Option<&LayerFs>,
) -> PodSandboxMetrics {
    let record = pod.snapshot();
    let mut out = Emitter::new(pod_labels(pod));
    match sandbox_stats::sample_of(d, pod) {
        Ok(Some(sample)) => cgroup_metrics(&mut out, &sample),
        Ok(None) => {}
        Err(e) => warn!(pod = %pod.id, error = %e, "pod cgroup metrics left out"),
    }
    out.emit(&m::START_TIME, secs(record.created_at), &[]);
    if let Some((_, interfaces)) = network {
        for i in &interfaces {
            network_metrics(&mut out, i);
        }
    }
    let container_metrics = lookup::containers_of(d, &pod.id)
        .iter()
        .filter(|c| c.state() == ContainerState::Running)
        .map(|c| ContainerMetrics {
            container_id: c.id.clone(),
            metrics: container_metrics(d, pod, c, fs),
        })
        .collect();
    PodSandboxMetrics {
        pod_sandbox_id: pod.id.clone(),
        metrics: out.metrics,
        container_metrics,
    }
}

fn container_metrics(d: &Daemon, pod: &Pod, c: &Container, fs: Option<&LayerFs>) -> Vec<Metric> {
    let record = c.snapshot();
    let mut out = Emitter::new(container_labels(pod, c, &record.image_name));
    match container_stats::sample_of(d, c) {
        Ok(Some(sample)) => cgroup_metrics(&mut out, &sample),
        Ok(None) => {}
        Err(e) => warn!(container = %c.id, error = %e, "container cgroup metrics left out"),
    }
    spec_cpu_metrics(&mut out, &resources_of(c, &record.resources));
    if let Some(layer) = cache().writable_layer(&d.snapshots, &c.id) {
        out.emit_at(&m::FS_USAGE, layer.bytes, &[], layer.at);
    }
    if let Some(fs) = fs {
        let device = [("device", fs.device.as_str())];
        out.emit(&m::FS_LIMIT, fs.limit_bytes, &device);
        out.emit(&m::FS_INODES_TOTAL, fs.inodes_total, &device);
        out.emit(&m::FS_INODES_FREE, fs.inodes_free, &device);
    }
    match super::container::cgroup::io_stats(d, &record) {
        Ok(devices) => io_metrics(&mut out, &devices),
        Err(e) => warn!(container = %c.id, error = %e, "container block I/O metrics left out"),
    }
    match super::container::cgroup::procs(d, &record) {
        Ok(pids) => process_metrics(&mut out, &pids),
        Err(e) => warn!(container = %c.id, error = %e, "container process metrics left out"),
    }
    out.emit(&m::START_TIME, secs(record.started_at), &[]);
    out.emit(&m::LAST_SEEN, secs(now_nanos()), &[]);
    out.metrics
}

/// Block I/O per device, as cAdvisor labels it (`device` is the node under /dev/block).
fn io_metrics(out: &mut Emitter, devices: &[longshore_cgroups::IoDevice]) {
    for io in devices {
        let (major, minor) = (io.major.to_string(), io.minor.to_string());
        let device = format!("/dev/block/{major}:{minor}");
        let dev = [("device", device.as_str())];
        out.emit(&m::FS_READS_BYTES, io.read_bytes, &dev);
        out.emit(&m::FS_READS, io.reads, &dev);
        out.emit(&m::FS_WRITES_BYTES, io.write_bytes, &dev);
        out.emit(&m::FS_WRITES, io.writes, &dev);
        for (operation, value) in [("Read", io.read_bytes), ("Write", io.write_bytes)] {
            let labels = [
                ("device", device.as_str()),
                ("major", major.as_str()),
                ("minor", minor.as_str()),
                ("operation", operation),
            ];
            out.emit(&m::BLKIO_USAGE, value, &labels);
        }
    }
}

/// Processes, open file descriptors and sockets of the processes `pids` (a process that has
/// gone meanwhile counts for nothing).
fn process_metrics(out: &mut Emitter, pids: &[u32]) {
    let (mut fds, mut sockets) = (0u64, 0u64);
    for pid in pids {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in entries.flatten() {
            fds += 1;
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.as_os_str().as_encoded_bytes().starts_with(b"socket:"));
            sockets += u64::from(is_socket);
        }
    }
    out.emit(&m::PROCESSES, pids.len() as u64, &[]);
    out.emit(&m::FILE_DESCRIPTORS, fds, &[]);
    out.emit(&m::SOCKETS, sockets, &[]);
}

/// The filesystem holding the containers' writable layers: cAdvisor's per-container `fs`
/// figures are its device's.
struct LayerFs {
    device: String,
    limit_bytes: u64,
    inodes_total: u64,
    inodes_free: u64,
}

/// Reads [`LayerFs`] once per call (statvfs of the root folder and the mount it is on).
fn layer_fs(d: &Daemon) -> Option<LayerFs> {
    let root = &d.config.root;
    let st = nix::sys::statvfs::statvfs(root).ok()?;
    let mounts = longshore_mountinfo::read_self().ok()?;
    let device = mounts
        .iter()
        .filter(|m| root.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.source.clone())
        .unwrap_or_default();
    Some(LayerFs {
        device,
        limit_bytes: st.blocks().saturating_mul(st.fragment_size()),
        inodes_total: st.files(),
        inodes_free: st.files_free(),
    })
}

/// CPU, memory, task and pressure metrics of one cgroup reading.
fn cgroup_metrics(out: &mut Emitter, sample: &Sample) {
    let Stats {
        cpu,
        memory,
        pids,
        oom_kills,
        pressure,
        ..
    } = &sample.stats;
    out.emit(
        &m::CPU_USAGE,
        cpu.usage_ns / NANOS_PER_SEC,
        &[("cpu", "total")],
    );
    out.emit(&m::CPU_USER, cpu.user_ns / NANOS_PER_SEC, &[]);
    out.emit(&m::CPU_SYSTEM, cpu.system_ns / NANOS_PER_SEC, &[]);
    out.emit(&m::CFS_PERIODS, cpu.periods, &[]);
    out.emit(&m::CFS_THROTTLED_PERIODS, cpu.throttled_periods, &[]);
    out.emit(
        &m::CFS_THROTTLED_SECONDS,
        cpu.throttled_ns / NANOS_PER_SEC,
        &[],
    );
    out.emit(&m::MEMORY_USAGE, memory.usage_bytes, &[]);
    out.emit(&m::MEMORY_WORKING_SET, memory.working_set_bytes, &[]);
    out.emit(&m::MEMORY_RSS, memory.rss_bytes, &[]);
    if let Some(swap) = memory.swap_usage_bytes {
        out.emit(&m::MEMORY_SWAP, swap, &[]);
    }
    // Both scopes, as cAdvisor reports them (our figures include descendants).
    for scope in ["container", "hierarchy"] {
        out.emit(
            &m::MEMORY_FAILURES,
            memory.page_faults,
            &[("failure_type", "pgfault"), ("scope", scope)],
        );
        out.emit(
            &m::MEMORY_FAILURES,
            memory.major_page_faults,
            &[("failure_type", "pgmajfault"), ("scope", scope)],
        );
    }
    out.emit(&m::MEMORY_CACHE, memory.cache_bytes, &[]);
    out.emit(&m::MEMORY_MAPPED_FILE, memory.mapped_file_bytes, &[]);
    out.emit(&m::MEMORY_KERNEL, memory.kernel_bytes, &[]);
    out.emit(&m::MEMORY_MAX_USAGE, memory.max_usage_bytes, &[]);
    out.emit(&m::MEMORY_FAILCNT, memory.failcnt, &[]);
    out.emit(&m::OOM_EVENTS, *oom_kills, &[]);
    // cAdvisor reports "unlimited" as 0.
    out.emit(&m::SPEC_MEMORY_LIMIT, memory.limit_bytes.unwrap_or(0), &[]);
    out.emit(
        &m::SPEC_MEMORY_SWAP_LIMIT,
        memory.swap_limit_bytes.unwrap_or(0),
        &[],
    );
    out.emit(&m::THREADS, pids.current, &[]);
    out.emit(&m::THREADS_MAX, pids.limit.unwrap_or(0), &[]);
    if let Some(p) = pressure {
        pressure_metrics(out, p.cpu.as_ref(), &m::CPU_WAITING, &m::CPU_STALLED);
        pressure_metrics(
            out,
            p.memory.as_ref(),
            &m::MEMORY_WAITING,
            &m::MEMORY_STALLED,
        );
        pressure_metrics(out, p.io.as_ref(), &m::IO_WAITING, &m::IO_STALLED);
    }
}

/// PSI "some" is time spent waiting, "full" time fully stalled.
fn pressure_metrics(out: &mut Emitter, psi: Option<&Psi>, waiting: &Desc, stalled: &Desc) {
    let Some(psi) = psi else { return };
    out.emit(waiting, psi.some.total_us / MICROS_PER_SEC, &[]);
    if let Some(full) = &psi.full {
        out.emit(stalled, full.total_us / MICROS_PER_SEC, &[]);
    }
}

fn network_metrics(out: &mut Emitter, i: &InterfaceCounters) {
    let label = [("interface", i.name.as_str())];
    out.emit(&m::NET_RX_BYTES, i.rx_bytes, &label);
    out.emit(&m::NET_RX_PACKETS, i.rx_packets, &label);
    out.emit(&m::NET_RX_DROPPED, i.rx_dropped, &label);
    out.emit(&m::NET_RX_ERRORS, i.rx_errors, &label);
    out.emit(&m::NET_TX_BYTES, i.tx_bytes, &label);
    out.emit(&m::NET_TX_PACKETS, i.tx_packets, &label);
    out.emit(&m::NET_TX_DROPPED, i.tx_dropped, &label);
    out.emit(&m::NET_TX_ERRORS, i.tx_errors, &label);
}

/// The CPU settings kubelet asked for (cAdvisor reads the same from the cgroup); unset ones are
/// left out.
fn spec_cpu_metrics(out: &mut Emitter, r: &LinuxContainerResources) {
    if let Ok(period) = u64::try_from(r.cpu_period) {
        if period > 0 {
            out.emit(&m::SPEC_CPU_PERIOD, period, &[]);
        }
    }
    if let Ok(quota) = u64::try_from(r.cpu_quota) {
        if quota > 0 {
            out.emit(&m::SPEC_CPU_QUOTA, quota, &[]);
        }
    }
    if let Ok(shares) = u64::try_from(r.cpu_shares) {
        if shares > 0 {
            out.emit(&m::SPEC_CPU_SHARES, shares, &[]);
        }
    }
}

/// The container's current resources: the last update, else what it was created with.
fn resources_of(c: &Container, updated: &[u8]) -> LinuxContainerResources {
    if !updated.is_empty() {
        if let Ok(r) = LinuxContainerResources::decode(updated) {
            return r;
        }
    }
    c.config
        .linux
        .as_ref()
        .and_then(|l| l.resources.clone())
        .unwrap_or_default()
}

fn pod_labels(pod: &Pod) -> Vec<(&'static str, String)> {
    let meta = pod.config.metadata.clone().unwrap_or_default();
    vec![
        ("container", String::new()),
        ("id", pod.id.clone()),
        ("image", String::new()),
        ("name", Pod::full_name(&pod.config)),
        ("namespace", meta.namespace),
        ("pod", meta.name),
    ]
}

fn container_labels(pod: &Pod, c: &Container, image: &str) -> Vec<(&'static str, String)> {
    let meta = pod.config.metadata.clone().unwrap_or_default();
    vec![
        (
            "container",
            c.config
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
        ),
        ("id", c.id.clone()),
        ("image", image.to_string()),
        ("name", Container::full_name(&c.config, &pod.config)),
        ("namespace", meta.namespace),
        ("pod", meta.name),
    ]
}

/// ns since the epoch to whole seconds (0 stays 0).
fn secs(nanos: i64) -> u64 {
    u64::try_from(nanos).unwrap_or(0) / NANOS_PER_SEC
}

/// Builds the metrics of one pod or container: its base labels plus each metric's own.
struct Emitter {
    base: Vec<(&'static str, String)>,
    metrics: Vec<Metric>,
}

impl Emitter {
    fn new(base: Vec<(&'static str, String)>) -> Emitter {
        Emitter {
            base,
            metrics: Vec::new(),
        }
    }

    /// A metric read just now (timestamp 0: "gathered live").
    fn emit(&mut self, desc: &Desc, value: u64, extra: &[(&'static str, &str)]) {
        self.emit_at(desc, value, extra, 0);
    }

    /// A metric measured at `timestamp` (ns since the epoch) and served from a cache.
    fn emit_at(&mut self, desc: &Desc, value: u64, extra: &[(&'static str, &str)], timestamp: i64) {
        debug_assert_eq!(
            extra.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            desc.extra,
            "{}",
            desc.name
        );
        let pairs = self
            .base
            .iter()
            .cloned()
            .chain(extra.iter().map(|(k, v)| (*k, v.to_string())))
            .collect();
        self.metrics.push(Metric {
            name: desc.name.to_string(),
            timestamp,
            metric_type: desc.kind as i32,
            label_values: labels(pairs).1,
            value: Some(UInt64Value { value }),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::SystemTime;

    use longshore_cgroups::{CpuStats, MemoryStats, PidsStats, Pressure, PsiLine};

    use super::*;

    fn base() -> Vec<(&'static str, String)> {
        ["container", "id", "image", "name", "namespace", "pod"]
            .iter()
            .map(|k| (*k, format!("{k}-v")))
            .collect()
    }

    #[test]
    fn every_metric_matches_its_descriptor() {
        let sample = Sample {
            stats: Stats {
                timestamp: SystemTime::now(),
                cpu: CpuStats {
                    usage_ns: 3_500_000_000,
                    user_ns: 2_000_000_000,
                    ..Default::default()
                },
                memory: MemoryStats {
                    usage_bytes: 10,
                    working_set_bytes: 8,
                    limit_bytes: Some(64),
                    swap_usage_bytes: Some(0),
                    ..Default::default()
                },
                pids: PidsStats {
                    current: 4,
                    limit: None,
                },
                oom_kills: 1,
                pressure: Some(Pressure {
                    cpu: Some(Psi {
                        some: PsiLine {
                            total_us: 2_500_000,
                            ..Default::default()
                        },
                        full: None,
                    }),
                    memory: None,
                    io: Some(Psi {
                        some: PsiLine::default(),
                        full: Some(PsiLine {
                            total_us: 9_000_000,
                            ..Default::default()
                        }),
                    }),
                }),
            },
            nano_cores: None,
        };
        let mut out = Emitter::new(base());
        cgroup_metrics(&mut out, &sample);
        network_metrics(
            &mut out,
            &InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 99,
                ..Default::default()
            },
        );
        spec_cpu_metrics(
            &mut out,
            &LinuxContainerResources {
                cpu_quota: 50_000,
                cpu_period: 100_000,
                ..Default::default()
            },
        );
        let descs: HashMap<String, _> = descriptors()
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        for metric in &out.metrics {
            let desc = descs
                .get(&metric.name)
                .unwrap_or_else(|| panic!("{} has no descriptor", metric.name));
            assert_eq!(
                metric.label_values.len(),
                desc.label_keys.len(),
                "{}",
                metric.name
            );
            for (k, v) in desc.label_keys.iter().zip(&metric.label_values) {
                if m::BASE_LABELS.contains(&k.as_str()) {
                    assert_eq!(v, &format!("{k}-v"), "{} label {k}", metric.name);
                }
            }
        }
        let find = |name: &str| {
            out.metrics
                .iter()
                .find(|x| x.name == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(
            find(m::CPU_USAGE.name).value.unwrap().value,
            3,
            "whole seconds"
        );
        assert_eq!(find(m::CPU_USAGE.name).label_values[1], "total");
        assert_eq!(find(m::MEMORY_WORKING_SET.name).value.unwrap().value, 8);
        assert_eq!(
            find(m::MEMORY_WORKING_SET.name).metric_type,
            crate::api::MetricType::Gauge as i32
        );
        assert_eq!(
            find(m::OOM_EVENTS.name).metric_type,
            crate::api::MetricType::Counter as i32
        );
        assert_eq!(find(m::SPEC_MEMORY_LIMIT.name).value.unwrap().value, 64);
        assert_eq!(find(m::CPU_WAITING.name).value.unwrap().value, 2);
        assert!(
            out.metrics.iter().all(|x| x.name != m::CPU_STALLED.name),
            "no full line, no stalled"
        );
        assert_eq!(find(m::IO_STALLED.name).value.unwrap().value, 9);
        assert_eq!(
            find(m::NET_RX_BYTES.name).label_values[3],
            "eth0",
            "interface sorts after image"
        );
        assert_eq!(find(m::SPEC_CPU_QUOTA.name).value.unwrap().value, 50_000);
        assert!(
            out.metrics
                .iter()
                .all(|x| x.name != m::SPEC_CPU_SHARES.name),
            "unset shares left out"
        );
        assert_eq!(
            out.metrics
                .iter()
                .filter(|x| x.name == m::MEMORY_FAILURES.name)
                .count(),
            4
        );
    }
}
