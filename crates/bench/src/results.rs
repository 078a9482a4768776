//! The figures a run collects: per figure, the samples of every endpoint, or why there are none.

use std::collections::BTreeMap;

use serde::Serialize;

/// What a figure's numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Milliseconds of wall time.
    Ms,
    /// Bytes of memory.
    Bytes,
    /// A plain count.
    Count,
}

/// One line of the report: a figure measured on each endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The scenario that measured it (`runp`, `memory`, ...).
    pub scenario: String,
    /// What it is (`RunPodSandbox`, `daemon RSS, idle`, ...).
    pub name: String,
    /// Unit of the samples.
    pub unit: Unit,
    /// A single reading (memory) rather than a distribution (latency).
    pub single: bool,
    /// Samples by endpoint name.
    pub samples: BTreeMap<String, Vec<f64>>,
}

/// A scenario that stopped early on one endpoint: its figures there are incomplete.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The scenario.
    pub scenario: String,
    /// The endpoint.
    pub endpoint: String,
    /// What went wrong.
    pub message: String,
}

/// Every figure of a run, in the order first measured, and the scenarios that failed.
#[derive(Debug, Default)]
pub struct Results {
    /// The figures.
    pub figures: Vec<Figure>,
    /// Scenarios that stopped early, by endpoint.
    pub failures: Vec<Failure>,
}

impl Results {
    fn figure(&mut self, scenario: &str, name: &str, unit: Unit, single: bool) -> &mut Figure {
        let pos = self
            .figures
            .iter()
            .position(|f| f.scenario == scenario && f.name == name);
        let index = match pos {
            Some(i) => i,
            None => {
                self.figures.push(Figure {
                    scenario: scenario.to_string(),
                    name: name.to_string(),
                    unit,
                    single,
                    samples: BTreeMap::new(),
                });
                self.figures.len() - 1
            }
        };
        &mut self.figures[index]
    }

    /// Adds one sample of a distribution.
    pub fn sample(&mut self, scenario: &str, name: &str, unit: Unit, endpoint: &str, value: f64) {
        let f = self.figure(scenario, name, unit, false);
        f.samples
            .entry(endpoint.to_string())
            .or_default()
            .push(value);
    }

    /// Sets a single reading (replacing an earlier one).
    pub fn single(&mut self, scenario: &str, name: &str, unit: Unit, endpoint: &str, value: f64) {
        let f = self.figure(scenario, name, unit, true);
        f.samples.insert(endpoint.to_string(), vec![value]);
    }

    /// Notes that a scenario stopped early on an endpoint.
    pub fn fail(&mut self, scenario: &str, endpoint: &str, message: String) {
        self.failures.push(Failure {
            scenario: scenario.into(),
            endpoint: endpoint.into(),
            message,
        });
    }

    /// Whether a scenario stopped early on an endpoint.
    pub fn failed(&self, scenario: &str, endpoint: &str) -> bool {
        self.failures
            .iter()
            .any(|f| f.scenario == scenario && f.endpoint == endpoint)
    }
}

/// Milliseconds of a duration, as a sample.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_gather_by_figure_and_endpoint() {
        let mut r = Results::default();
        r.sample("runp", "RunPodSandbox", Unit::Ms, "a", 1.0);
        r.sample("runp", "RunPodSandbox", Unit::Ms, "b", 2.0);
        r.sample("runp", "RunPodSandbox", Unit::Ms, "a", 3.0);
        r.single("memory", "daemon RSS", Unit::Bytes, "a", 10.0);
        r.single("memory", "daemon RSS", Unit::Bytes, "a", 11.0);
        assert_eq!(r.figures.len(), 2);
        assert_eq!(r.figures[0].samples["a"], vec![1.0, 3.0]);
        assert_eq!(r.figures[1].samples["a"], vec![11.0]);
        assert!(r.figures[1].single);
    }
}
