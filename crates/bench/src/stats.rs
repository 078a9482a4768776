//! Percentiles of a set of samples.

use serde::Serialize;

/// What a list of samples comes down to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank: with fewer than 20 samples it is the maximum).
    pub p95: f64,
    /// Largest sample.
    pub max: f64,
    /// Smallest sample.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Summarizes samples; `None` when there are none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(Summary {
        n,
        p50: nearest_rank(&sorted, 0.50),
        p95: nearest_rank(&sorted, 0.95),
        max: sorted[n - 1],
        min: sorted[0],
        mean: sorted.iter().sum::<f64>() / n as f64,
    })
}

/// The nearest-rank percentile: the smallest sample with at least `q` of the samples at or below
/// it. No interpolation, so every figure printed is a time that was really measured.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!(
            (s.n, s.p50, s.p95, s.max, s.min),
            (20, 10.0, 19.0, 20.0, 1.0)
        );
        assert_eq!(s.mean, 10.5);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let s = summarize(&[7.0]).unwrap();
        assert_eq!((s.p50, s.p95, s.max), (7.0, 7.0, 7.0));
    }

    #[test]
    fn no_samples_no_summary() {
        assert!(summarize(&[]).is_none());
    }
}
