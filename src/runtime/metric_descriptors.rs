//! The metrics `ListPodSandboxMetrics` reports (KEP-2371, cAdvisor-less metrics), named and
//! labelled as cAdvisor names them on kubelet's `/metrics/cadvisor`, so existing dashboards and
//! recording rules keep working.
//!
//! Every metric carries the base labels `container`, `id`, `image`, `name`, `namespace`, `pod`
//! (pod-level figures have `container=""`, like cAdvisor's pod cgroup); a few add their own.
//! kubelet builds Prometheus descriptors from these, so a metric's label values must match its
//! descriptor's keys one for one: [`labels`] sorts both the same way.
//!
//! CRI carries values as integers: `*_seconds_total` counters are whole seconds.

use crate::api::{MetricDescriptor, MetricType};

/// Labels every metric has.
pub(crate) const BASE_LABELS: [&str; 6] = ["container", "id", "image", "name", "namespace", "pod"];

/// One metric: its name, help, type, and the labels it adds to [`BASE_LABELS`].
pub(crate) struct Desc {
    /// Prometheus name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
    /// Labels beyond the base ones.
    pub extra: &'static [&'static str],
}

const fn counter(name: &'static str, help: &'static str, extra: &'static [&'static str]) -> Desc {
    Desc {
        name,
        help,
        kind: MetricType::Counter,
        extra,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Desc {
    gauge_with(name, help, &[])
}

const fn gauge_with(
    name: &'static str,
    help: &'static str,
    extra: &'static [&'static str],
) -> Desc {
    Desc {
        name,
        help,
        kind: MetricType::Gauge,
        extra,
    }
}

/// `cpu="total"`: cAdvisor's label for the all-CPU figure.
const CPU: &[&str] = &["cpu"];
const FAILURE: &[&str] = &["failure_type", "scope"];
const INTERFACE: &[&str] = &["interface"];
/// The filesystem's device (cAdvisor's `device` label).
const DEVICE: &[&str] = &["device"];
const BLKIO: &[&str] = &["device", "major", "minor", "operation"];

pub(crate) const CPU_USAGE: Desc = counter(
    "container_cpu_usage_seconds_total",
    "Cumulative cpu time consumed in seconds.",
    CPU,
);
pub(crate) const CPU_USER: Desc = counter(
    "container_cpu_user_seconds_total",
    "Cumulative user cpu time consumed in seconds.",
    &[],
);
pub(crate) const CPU_SYSTEM: Desc = counter(
    "container_cpu_system_seconds_total",
    "Cumulative system cpu time consumed in seconds.",
    &[],
);
pub(crate) const CFS_PERIODS: Desc = counter(
    "container_cpu_cfs_periods_total",
    "Number of elapsed enforcement period intervals.",
    &[],
);
pub(crate) const CFS_THROTTLED_PERIODS: Desc = counter(
    "container_cpu_cfs_throttled_periods_total",
    "Number of throttled period intervals.",
    &[],
);
pub(crate) const CFS_THROTTLED_SECONDS: Desc = counter(
    "container_cpu_cfs_throttled_seconds_total",
    "Total time duration the container has been throttled.",
    &[],
);
pub(crate) const MEMORY_USAGE: Desc = gauge(
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed",
);
pub(crate) const MEMORY_WORKING_SET: Desc = gauge(
    "container_memory_working_set_bytes",
    "Current working set in bytes.",
);
pub(crate) const MEMORY_RSS: Desc = gauge("container_memory_rss", "Size of RSS in bytes.");
pub(crate) const MEMORY_SWAP: Desc =
    gauge("container_memory_swap", "Container swap usage in bytes.");
pub(crate) const MEMORY_FAILURES: Desc = counter(
    "container_memory_failures_total",
    "Cumulative count of memory allocation failures.",
    FAILURE,
);
pub(crate) const OOM_EVENTS: Desc = counter(
    "container_oom_events_total",
    "Count of out of memory events observed for the container",
    &[],
);
pub(crate) const SPEC_MEMORY_LIMIT: Desc = gauge(
    "container_spec_memory_limit_bytes",
    "Memory limit for the container.",
);
pub(crate) const SPEC_MEMORY_SWAP_LIMIT: Desc = gauge(
    "container_spec_memory_swap_limit_bytes",
    "Memory swap limit for the container.",
);
pub(crate) const SPEC_CPU_PERIOD: Desc =
    gauge("container_spec_cpu_period", "CPU period of the container.");
pub(crate) const SPEC_CPU_QUOTA: Desc =
    gauge("container_spec_cpu_quota", "CPU quota of the container.");
pub(crate) const SPEC_CPU_SHARES: Desc =
    gauge("container_spec_cpu_shares", "CPU share of the container.");
pub(crate) const THREADS: Desc = gauge(
    "container_threads",
    "Number of threads running inside the container",
);
pub(crate) const THREADS_MAX: Desc = gauge(
    "container_threads_max",
    "Maximum number of threads allowed inside the container, infinity if value is zero",
);
pub(crate) const FS_USAGE: Desc = gauge(
    "container_fs_usage_bytes",
    "Number of bytes that are consumed by the container on this filesystem.",
);
pub(crate) const START_TIME: Desc = gauge(
    "container_start_time_seconds",
    "Start time of the container since unix epoch in seconds.",
);
pub(crate) const NET_RX_BYTES: Desc = counter(
    "container_network_receive_bytes_total",
    "Cumulative count of bytes received",
    INTERFACE,
);
pub(crate) const NET_RX_PACKETS: Desc = counter(
    "container_network_receive_packets_total",
    "Cumulative count of packets received",
    INTERFACE,
);
pub(crate) const NET_RX_DROPPED: Desc = counter(
    "container_network_receive_packets_dropped_total",
    "Cumulative count of packets dropped while receiving",
    INTERFACE,
);
pub(crate) const NET_RX_ERRORS: Desc = counter(
    "container_network_receive_errors_total",
    "Cumulative count of errors encountered while receiving",
    INTERFACE,
);
pub(crate) const NET_TX_BYTES: Desc = counter(
    "container_network_transmit_bytes_total",
    "Cumulative count of bytes transmitted",
    INTERFACE,
);
pub(crate) const NET_TX_PACKETS: Desc = counter(
    "container_network_transmit_packets_total",
    "Cumulative count of packets transmitted",
    INTERFACE,
);
pub(crate) const NET_TX_DROPPED: Desc = counter(
    "container_network_transmit_packets_dropped_total",
    "Cumulative count of packets dropped while transmitting",
    INTERFACE,
);
pub(crate) const NET_TX_ERRORS: Desc = counter(
    "container_network_transmit_errors_total",
    "Cumulative count of errors encountered while transmitting",
    INTERFACE,
);
pub(crate) const CPU_WAITING: Desc = counter(
    "container_pressure_cpu_waiting_seconds_total",
    "Total time duration tasks in the container have waited due to CPU congestion.",
    &[],
);
pub(crate) const CPU_STALLED: Desc = counter(
    "container_pressure_cpu_stalled_seconds_total",
    "Total time duration no tasks in the container could make progress due to CPU congestion.",
    &[],
);
pub(crate) const MEMORY_WAITING: Desc = counter(
    "container_pressure_memory_waiting_seconds_total",
    "Total time duration tasks in the container have waited due to memory congestion.",
    &[],
);
pub(crate) const MEMORY_STALLED: Desc = counter(
    "container_pressure_memory_stalled_seconds_total",
    "Total time duration no tasks in the container could make progress due to memory congestion.",
    &[],
);
pub(crate) const IO_WAITING: Desc = counter(
    "container_pressure_io_waiting_seconds_total",
    "Total time duration tasks in the container have waited due to I/O congestion.",
    &[],
);
pub(crate) const IO_STALLED: Desc = counter(
    "container_pressure_io_stalled_seconds_total",
    "Total time duration no tasks in the container could make progress due to I/O congestion.",
    &[],
);

pub(crate) const BLKIO_USAGE: Desc = counter(
    "container_blkio_device_usage_total",
    "Blkio device bytes usage",
    BLKIO,
);
pub(crate) const FS_READS_BYTES: Desc = counter(
    "container_fs_reads_bytes_total",
    "Cumulative count of bytes read",
    DEVICE,
);
pub(crate) const FS_READS: Desc = counter(
    "container_fs_reads_total",
    "Cumulative count of reads completed",
    DEVICE,
);
pub(crate) const FS_WRITES_BYTES: Desc = counter(
    "container_fs_writes_bytes_total",
    "Cumulative count of bytes written",
    DEVICE,
);
pub(crate) const FS_WRITES: Desc = counter(
    "container_fs_writes_total",
    "Cumulative count of writes completed",
    DEVICE,
);
pub(crate) const FS_INODES_FREE: Desc = gauge_with(
    "container_fs_inodes_free",
    "Number of available Inodes",
    DEVICE,
);
pub(crate) const FS_INODES_TOTAL: Desc =
    gauge_with("container_fs_inodes_total", "Number of Inodes", DEVICE);
pub(crate) const FS_LIMIT: Desc = gauge_with(
    "container_fs_limit_bytes",
    "Number of bytes that can be consumed by the container on this filesystem.",
    DEVICE,
);
pub(crate) const FILE_DESCRIPTORS: Desc = gauge(
    "container_file_descriptors",
    "Number of open file descriptors for the container.",
);
pub(crate) const SOCKETS: Desc = gauge(
    "container_sockets",
    "Number of open sockets for the container.",
);
pub(crate) const PROCESSES: Desc = gauge(
    "container_processes",
    "Number of processes running inside the container.",
);
pub(crate) const LAST_SEEN: Desc = gauge(
    "container_last_seen",
    "Last time a container was seen by the exporter",
);
pub(crate) const MEMORY_CACHE: Desc = gauge(
    "container_memory_cache",
    "Number of bytes of page cache memory.",
);
/// A counter that cAdvisor names without `_total`.
pub(crate) const MEMORY_FAILCNT: Desc = counter(
    "container_memory_failcnt",
    "Number of memory usage hits limits",
    &[],
);
pub(crate) const MEMORY_KERNEL: Desc = gauge(
    "container_memory_kernel_usage",
    "Size of kernel memory allocated in bytes.",
);
pub(crate) const MEMORY_MAPPED_FILE: Desc = gauge(
    "container_memory_mapped_file",
    "Size of memory mapped files in bytes.",
);
pub(crate) const MEMORY_MAX_USAGE: Desc = gauge(
    "container_memory_max_usage_bytes",
    "Maximum memory usage recorded in bytes",
);

/// Every metric Longshore reports.
pub(crate) const ALL: &[&Desc] = &[
    &CPU_USAGE,
    &CPU_USER,
    &CPU_SYSTEM,
    &CFS_PERIODS,
    &CFS_THROTTLED_PERIODS,
    &CFS_THROTTLED_SECONDS,
    &MEMORY_USAGE,
    &MEMORY_WORKING_SET,
    &MEMORY_RSS,
    &MEMORY_SWAP,
    &MEMORY_FAILURES,
    &OOM_EVENTS,
    &SPEC_MEMORY_LIMIT,
    &SPEC_MEMORY_SWAP_LIMIT,
    &SPEC_CPU_PERIOD,
    &SPEC_CPU_QUOTA,
    &SPEC_CPU_SHARES,
    &THREADS,
    &THREADS_MAX,
    &FS_USAGE,
    &START_TIME,
    &NET_RX_BYTES,
    &NET_RX_PACKETS,
    &NET_RX_DROPPED,
    &NET_RX_ERRORS,
    &NET_TX_BYTES,
    &NET_TX_PACKETS,
    &NET_TX_DROPPED,
    &NET_TX_ERRORS,
    &CPU_WAITING,
    &CPU_STALLED,
    &MEMORY_WAITING,
    &MEMORY_STALLED,
    &IO_WAITING,
    &IO_STALLED,
    &BLKIO_USAGE,
    &FS_READS_BYTES,
    &FS_READS,
    &FS_WRITES_BYTES,
    &FS_WRITES,
    &FS_INODES_FREE,
    &FS_INODES_TOTAL,
    &FS_LIMIT,
    &FILE_DESCRIPTORS,
    &SOCKETS,
    &PROCESSES,
    &LAST_SEEN,
    &MEMORY_CACHE,
    &MEMORY_FAILCNT,
    &MEMORY_KERNEL,
    &MEMORY_MAPPED_FILE,
    &MEMORY_MAX_USAGE,
];

/// The CRI descriptors of [`ALL`].
pub(crate) fn descriptors() -> Vec<MetricDescriptor> {
    ALL.iter()
        .map(|d| {
            let keys = BASE_LABELS
                .iter()
                .chain(d.extra)
                .map(|k| (*k, String::new()))
                .collect();
            MetricDescriptor {
                name: d.name.to_string(),
                help: d.help.to_string(),
                label_keys: labels(keys).0,
            }
        })
        .collect()
}

/// Label keys and values sorted by key, as CRI asks ("the runtime keeps the keys and values
/// sorted"): the same set of keys always comes out in the same order.
pub(crate) fn labels(mut pairs: Vec<(&str, String)>) -> (Vec<String>, Vec<String>) {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).unzip()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_keys_sorted() {
        let descs = descriptors();
        let names: HashSet<_> = descs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), ALL.len());
        for d in &descs {
            let mut sorted = d.label_keys.clone();
            sorted.sort();
            assert_eq!(d.label_keys, sorted, "{}", d.name);
            assert!(d.name.starts_with("container_"), "{}", d.name);
            let counter = ALL
                .iter()
                .any(|a| a.name == d.name && a.kind == MetricType::Counter);
            // cAdvisor's two exceptions: a counter without `_total`, a gauge with it.
            let named_counter = (d.name.ends_with("_total") && d.name != FS_INODES_TOTAL.name)
                || d.name == MEMORY_FAILCNT.name;
            assert_eq!(named_counter, counter, "{}", d.name);
        }
        let net = descs.iter().find(|d| d.name == NET_RX_BYTES.name).unwrap();
        assert_eq!(
            net.label_keys,
            [
                "container",
                "id",
                "image",
                "interface",
                "name",
                "namespace",
                "pod"
            ]
        );
    }

    #[test]
    fn values_follow_their_keys() {
        let (keys, values) = labels(vec![
            ("pod", "p".into()),
            ("cpu", "total".into()),
            ("container", "c".into()),
        ]);
        assert_eq!(keys, ["container", "cpu", "pod"]);
        assert_eq!(values, ["c", "total", "p"]);
    }
}
