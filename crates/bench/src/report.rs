//! What a run prints: one table with every endpoint side by side and the ratio of the first
//! endpoint (the subject) to each other one, or the same as JSON for CI and plotting.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::results::{Failure, Figure, Results, Unit};
use super::stats::{Summary, summarize};

/// An endpoint as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointInfo {
    /// The name given on the command line.
    pub name: String,
    /// Its address.
    pub uri: String,
    /// `runtime_name` from the Version RPC.
    pub runtime_name: String,
    /// `runtime_version` from the Version RPC.
    pub runtime_version: String,
}

/// The machine the run was on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// `uname -sr`.
    pub kernel: String,
    /// CPU model name.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// /proc/loadavg when the report was made: other work on the machine shows here.
    pub loadavg: String,
}

impl Machine {
    /// Reads the machine's facts from /proc and uname.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim())
            })
            .unwrap_or("unknown")
            .to_string();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let kernel = nix::sys::utsname::uname()
            .map(|u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            })
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Machine {
            kernel,
            cpu,
            cpus,
            memory_bytes,
            loadavg,
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// The endpoints, subject first.
    pub endpoints: Vec<EndpointInfo>,
    /// The settings of the run, as `name: value`.
    pub settings: BTreeMap<String, String>,
    /// The figures.
    #[serde(skip)]
    pub results: &'a Results,
}

/// One figure in the JSON output.
#[derive(Serialize)]
struct JsonFigure<'a> {
    scenario: &'a str,
    name: &'a str,
    unit: Unit,
    results: BTreeMap<&'a str, JsonResult<'a>>,
    /// The subject's p50 divided by each other endpoint's.
    ratios: BTreeMap<&'a str, f64>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    #[serde(flatten)]
    summary: Summary,
    samples: &'a [f64],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report<'a>,
    figures: Vec<JsonFigure<'a>>,
    failures: &'a [Failure],
}

impl Report<'_> {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        let figures = self
            .results
            .figures
            .iter()
            .map(|f| JsonFigure {
                scenario: &f.scenario,
                name: &f.name,
                unit: f.unit,
                results: f
                    .samples
                    .iter()
                    .filter_map(|(ep, s)| {
                        summarize(s).map(|summary| {
                            (
                                ep.as_str(),
                                JsonResult {
                                    summary,
                                    samples: s,
                                },
                            )
                        })
                    })
                    .collect(),
                ratios: self
                    .references()
                    .filter_map(|r| self.ratio(f, r).map(|x| (r, x)))
                    .collect(),
            })
            .collect();
        let failures = &self.results.failures;
        serde_json::to_string_pretty(&JsonReport {
            report: self,
            figures,
            failures,
        })
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    fn subject(&self) -> &str {
        self.endpoints.first().map_or("", |e| e.name.as_str())
    }

    fn references(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().skip(1).map(|e| e.name.as_str())
    }

    /// The report as a plain-text table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "longshore-bench, {}", self.date);
        let _ = writeln!(
            out,
            "machine: {} CPUs ({}), {:.1} GiB, {}, load average at the end {}",
            m.cpus,
            m.cpu,
            m.memory_bytes as f64 / (1u64 << 30) as f64,
            m.kernel,
            m.loadavg
        );
        for e in &self.endpoints {
            let _ = writeln!(
                out,
                "{:>12}: {} {} at {}",
                e.name, e.runtime_name, e.runtime_version, e.uri
            );
        }
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "settings: {}", settings.join(", "));
        out.push('\n');
        self.write_header(&mut out);
        let mut scenarios: Vec<&str> = Vec::new();
        for f in &self.results.figures {
            if !scenarios.contains(&f.scenario.as_str()) {
                scenarios.push(&f.scenario);
            }
        }
        for scenario in scenarios {
            let _ = writeln!(out, "{scenario}");
            for f in self
                .results
                .figures
                .iter()
                .filter(|f| f.scenario == scenario)
            {
                self.write_row(&mut out, f);
            }
        }
        if !self.results.failures.is_empty() {
            out.push_str("\nfailed (figures marked `error` are incomplete):\n");
            for f in &self.results.failures {
                let _ = writeln!(out, "  {} on {}: {}", f.scenario, f.endpoint, f.message);
            }
        }
        let _ = writeln!(
            out,
            "\nratio = {} p50 / other p50 (below 1: {} is faster or smaller). p50/p95 by nearest rank.",
            self.subject(),
            self.subject()
        );
        out
    }

    fn write_header(&self, out: &mut String) {
        let mut names = format!("{:NAME_WIDTH$}", "");
        let mut stats = format!("{:NAME_WIDTH$}", "figure");
        for e in &self.endpoints {
            let _ = write!(names, " {:>width$}", e.name, width = 3 * COL + 2);
            let _ = write!(stats, " {:>COL$} {:>COL$} {:>COL$}", "p50", "p95", "max");
        }
        for r in self.references() {
            let _ = write!(names, " {:>RATIO_COL$}", "ratio vs");
            let _ = write!(stats, " {:>RATIO_COL$}", short(r, RATIO_COL));
        }
        let _ = writeln!(out, "{}", names.trim_end());
        let _ = writeln!(out, "{}", stats.trim_end());
    }

    fn write_row(&self, out: &mut String, f: &Figure) {
        let mut line = format!(
            "  {:width$}",
            short(&f.name, NAME_WIDTH - 2),
            width = NAME_WIDTH - 2
        );
        for e in &self.endpoints {
            let failed = self.results.failed(&f.scenario, &e.name);
            let cells = match f.samples.get(&e.name).and_then(|s| summarize(s)) {
                _ if failed => ["error".to_string(), String::new(), String::new()],
                None => ["-".to_string(), String::new(), String::new()],
                Some(s) if f.single => [format_value(s.p50, f.unit), String::new(), String::new()],
                Some(s) => [
                    format_value(s.p50, f.unit),
                    format_value(s.p95, f.unit),
                    format_value(s.max, f.unit),
                ],
            };
            let _ = write!(
                line,
                " {:>COL$} {:>COL$} {:>COL$}",
                cells[0], cells[1], cells[2]
            );
        }
        for r in self.references() {
            let cell = self
                .ratio(f, r)
                .map_or("-".to_string(), |x| format!("{x:.2}x"));
            let _ = write!(line, " {cell:>RATIO_COL$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

const NAME_WIDTH: usize = 44;
const COL: usize = 9;
const RATIO_COL: usize = 11;

impl Report<'_> {
    /// The subject's p50 over the reference's, when both were fully measured and the reference
    /// is not 0.
    fn ratio(&self, f: &Figure, reference: &str) -> Option<f64> {
        let subject = self.subject();
        if self.results.failed(&f.scenario, subject) || self.results.failed(&f.scenario, reference)
        {
            return None;
        }
        let s = summarize(f.samples.get(subject)?)?;
        let r = summarize(f.samples.get(reference)?)?;
        (r.p50 != 0.0).then(|| s.p50 / r.p50)
    }
}

/// A value in its unit, short enough for a column.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v >= 10_000.0 => format!("{:.2}s", v / 1000.0),
        Unit::Ms if v >= 100.0 => format!("{v:.0}ms"),
        Unit::Ms if v >= 10.0 => format!("{v:.1}ms"),
        Unit::Ms => format!("{v:.2}ms"),
        Unit::Bytes => format!("{:.1}MiB", v / (1u64 << 20) as f64),
        Unit::Count => format!("{v:.0}"),
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('~');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: &Results) -> Report<'_> {
        let ep = |name: &str| EndpointInfo {
            name: name.into(),
            uri: format!("unix:///tmp/{name}.sock"),
            runtime_name: name.into(),
            runtime_version: "1.0".into(),
        };
        Report {
            date: "2026-01-01T00:00:00Z".into(),
            machine: Machine {
                kernel: "Linux 6".into(),
                cpu: "cpu".into(),
                cpus: 2,
                memory_bytes: 1 << 30,
                loadavg: "1.0 1.0 1.0".into(),
            },
            endpoints: vec![ep("longshore"), ep("containerd")],
            settings: BTreeMap::from([("iterations".to_string(), "3".to_string())]),
            results,
        }
    }

    #[test]
    fn table_shows_both_endpoints_and_the_ratio() {
        let mut r = Results::default();
        for (a, b) in [(10.0, 100.0), (12.0, 120.0), (11.0, 110.0)] {
            r.sample("runp", "RunPodSandbox", Unit::Ms, "longshore", a);
            r.sample("runp", "RunPodSandbox", Unit::Ms, "containerd", b);
        }
        r.single(
            "memory",
            "daemon RSS, idle",
            Unit::Bytes,
            "longshore",
            8.0 * 1048576.0,
        );
        r.single(
            "memory",
            "daemon RSS, idle",
            Unit::Bytes,
            "containerd",
            32.0 * 1048576.0,
        );
        let text = report(&r).to_text();
        let row = text.lines().find(|l| l.contains("RunPodSandbox")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "RunPodSandbox",
                "11.0ms",
                "12.0ms",
                "12.0ms",
                "110ms",
                "120ms",
                "120ms",
                "0.10x"
            ]
        );
        let mem = text.lines().find(|l| l.contains("daemon RSS")).unwrap();
        let cells: Vec<&str> = mem.split_whitespace().collect();
        assert_eq!(
            cells,
            ["daemon", "RSS,", "idle", "8.0MiB", "32.0MiB", "0.25x"]
        );
        let header = text.lines().find(|l| l.starts_with("figure")).unwrap();
        assert!(header.ends_with(" containerd"), "{header}");
    }

    #[test]
    fn errors_show_in_the_table_and_drop_the_ratio() {
        let mut r = Results::default();
        r.sample("pull", "cold pull", Unit::Ms, "longshore", 1000.0);
        r.sample("pull", "cold pull", Unit::Ms, "containerd", 2000.0);
        r.fail("pull", "containerd", "PullImage: not found".into());
        let text = report(&r).to_text();
        let row = text.lines().find(|l| l.starts_with("  cold pull")).unwrap();
        assert!(row.contains("error") && row.ends_with('-'), "{row}");
        assert!(
            text.contains("pull on containerd: PullImage: not found"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&report(&r).to_json()).unwrap();
        assert_eq!(v["failures"][0]["endpoint"], "containerd");
        assert!(v["figures"][0]["ratios"].as_object().unwrap().is_empty());
    }

    #[test]
    fn json_carries_summaries_samples_and_ratios() {
        let mut r = Results::default();
        r.sample("runp", "RunPodSandbox", Unit::Ms, "longshore", 5.0);
        r.sample("runp", "RunPodSandbox", Unit::Ms, "containerd", 50.0);
        let v: serde_json::Value = serde_json::from_str(&report(&r).to_json()).unwrap();
        assert_eq!(v["machine"]["cpus"], 2);
        assert_eq!(v["endpoints"][1]["name"], "containerd");
        let f = &v["figures"][0];
        assert_eq!(f["unit"], "ms");
        assert_eq!(f["results"]["longshore"]["p50"], 5.0);
        assert_eq!(f["results"]["containerd"]["samples"][0], 50.0);
        assert_eq!(f["ratios"]["containerd"], 0.1);
    }

    #[test]
    fn values_fit_their_columns() {
        assert_eq!(format_value(3.14259, Unit::Ms), "3.14ms");
        assert_eq!(format_value(42.42, Unit::Ms), "42.4ms");
        assert_eq!(format_value(159.4, Unit::Ms), "159ms");
        assert_eq!(format_value(12_345.0, Unit::Ms), "12.35s");
        assert_eq!(format_value(13.7 * 1048576.0, Unit::Bytes), "13.7MiB");
        assert_eq!(format_value(50.0, Unit::Count), "50");
    }
}
