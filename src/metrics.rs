//! The daemon's own metrics for Prometheus: CRI calls (count by method and status code, latency
//! by method), image pulls (count, bytes, duration) and what runs now (ready pods, running
//! containers).
//!
//! Recording is cheap and never fails: the RPC wrapper calls [`observe_rpc`] for every call, the
//! pull path [`observe_pull`] for every finished pull, into one process-wide registry (one daemon
//! per process). [`http::serve`] answers `GET /metrics` with the text exposition when
//! `[metrics] address` is set; nothing is served by default.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: typed label sets, no
//! global macros, OpenMetrics text encoding, no protobuf or HTTP stack of its own.

pub mod http;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Every metric name starts with this.
const PREFIX: &str = "longshore";

/// CRI call latencies: 0.5 ms (Version) to ~75 s (a large pull), ×2.5 per bucket.
fn rpc_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 14))
}

/// Pull durations: 0.1 s to ~6 min, ×2.5 per bucket.
fn pull_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.5, 10))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<MethodLabel, Histogram, fn() -> Histogram>,
    pulls: Counter,
    pull_bytes: Counter,
    pull_seconds: Histogram,
    running_pods: Gauge,
    running_containers: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let calls = Family::<CallLabels, Counter>::default();
        let call_seconds =
            Family::<MethodLabel, Histogram, fn() -> Histogram>::new_with_constructor(rpc_buckets);
        let (pulls, pull_bytes, pull_seconds) =
            (Counter::default(), Counter::default(), pull_buckets());
        let (running_pods, running_containers) = (Gauge::default(), Gauge::default());
        registry.register(
            "cri_requests",
            "CRI calls served, by method and gRPC status code",
            calls.clone(),
        );
        registry.register(
            "cri_request_duration_seconds",
            "Time to answer a CRI call, by method",
            call_seconds.clone(),
        );
        registry.register("image_pulls", "Images pulled", pulls.clone());
        registry.register(
            "image_pull_bytes",
            "Bytes of images pulled (compressed layers and configs)",
            pull_bytes.clone(),
        );
        registry.register(
            "image_pull_duration_seconds",
            "Time to pull an image",
            pull_seconds.clone(),
        );
        registry.register(
            "running_pods",
            "Pod sandboxes that are ready",
            running_pods.clone(),
        );
        registry.register(
            "running_containers",
            "Containers whose process runs",
            running_containers.clone(),
        );
        Metrics {
            registry,
            calls,
            call_seconds,
            pulls,
            pull_bytes,
            pull_seconds,
            running_pods,
            running_containers,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Records one finished RPC.
pub fn observe_rpc(method: &'static str, elapsed: Duration, error: Option<tonic::Code>) {
    let code = grpc_code_name(error.unwrap_or(tonic::Code::Ok));
    METRICS
        .calls
        .get_or_create(&CallLabels { method, code })
        .inc();
    METRICS
        .call_seconds
        .get_or_create(&MethodLabel { method })
        .observe(elapsed.as_secs_f64());
}

/// Records one finished image pull.
pub fn observe_pull(elapsed: Duration, bytes: u64) {
    METRICS.pulls.inc();
    METRICS.pull_bytes.inc_by(bytes);
    METRICS.pull_seconds.observe(elapsed.as_secs_f64());
}

/// The exposition text (OpenMetrics), with the gauges set to what runs now.
pub fn render(running_pods: usize, running_containers: usize) -> String {
    METRICS
        .running_pods
        .set(i64::try_from(running_pods).unwrap_or(i64::MAX));
    METRICS
        .running_containers
        .set(i64::try_from(running_containers).unwrap_or(i64::MAX));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry);
    text
}

/// The code names gRPC's Go implementation uses (and so containerd's and CRI-O's dashboards).
fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value on the exposition line that starts with `series` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .trim()
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
    }

    #[test]
    fn calls_pulls_and_gauges_show_in_the_exposition() {
        let before = render(0, 0);
        let ok_series = "longshore_cri_requests_total{method=\"MetricsUnitTest\",code=\"OK\"}";
        assert_eq!(sample(&before, ok_series), None);
        observe_rpc("MetricsUnitTest", Duration::from_millis(3), None);
        observe_rpc("MetricsUnitTest", Duration::from_millis(40), None);
        observe_rpc(
            "MetricsUnitTest",
            Duration::from_millis(1),
            Some(tonic::Code::NotFound),
        );
        let pulled = sample(&before, "longshore_image_pull_bytes_total").unwrap_or(0.0);
        observe_pull(Duration::from_secs(2), 1000);
        let text = render(3, 7);
        assert_eq!(sample(&text, ok_series), Some(2.0), "{text}");
        let not_found =
            "longshore_cri_requests_total{method=\"MetricsUnitTest\",code=\"NotFound\"}";
        assert_eq!(sample(&text, not_found), Some(1.0));
        let count = "longshore_cri_request_duration_seconds_count{method=\"MetricsUnitTest\"}";
        assert_eq!(sample(&text, count), Some(3.0));
        let fast = "longshore_cri_request_duration_seconds_bucket{le=\"0.0078125\",method=\"MetricsUnitTest\"}";
        assert_eq!(
            sample(&text, fast),
            Some(2.0),
            "1 ms and 3 ms are under 7.8 ms:\n{text}"
        );
        assert_eq!(
            sample(&text, "longshore_image_pull_bytes_total"),
            Some(pulled + 1000.0)
        );
        assert_eq!(sample(&text, "longshore_running_pods"), Some(3.0));
        assert_eq!(sample(&text, "longshore_running_containers"), Some(7.0));
        assert!(
            text.trim_end().ends_with("# EOF"),
            "OpenMetrics text ends with # EOF"
        );
    }

    #[test]
    fn code_names_match_go_grpc() {
        assert_eq!(grpc_code_name(tonic::Code::Cancelled), "Canceled");
        assert_eq!(grpc_code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            grpc_code_name(tonic::Code::DeadlineExceeded),
            "DeadlineExceeded"
        );
    }
}
