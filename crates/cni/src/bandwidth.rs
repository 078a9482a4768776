//! Pod traffic shaping: the `bandwidth` capability, and kubelet's bandwidth annotations.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The pod annotation limiting traffic into the pod, in bits per second.
pub const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
/// The pod annotation limiting traffic out of the pod, in bits per second.
pub const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

/// Kubernetes refuses limits below 1 kbit/s and above 1 Pbit/s as unreasonable; so do we.
const MIN_RATE: u64 = 1_000;
const MAX_RATE: u64 = 1_000_000_000_000_000;

/// Kubernetes gives no burst; containerd and CRI-O pass the largest the plugin accepts.
const DEFAULT_BURST: u64 = u32::MAX as u64;

/// Rate limits for a pod, as the bandwidth plugin reads them. A rate of 0 means no limit
/// in that direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    /// Ingress rate, bits per second.
    pub ingress_rate: u64,
    /// Ingress burst, bits.
    pub ingress_burst: u64,
    /// Egress rate, bits per second.
    pub egress_rate: u64,
    /// Egress burst, bits.
    pub egress_burst: u64,
}

impl Bandwidth {
    /// Reads `kubernetes.io/ingress-bandwidth` and `kubernetes.io/egress-bandwidth` (Kubernetes
    /// quantities such as `10M` or `1Gi`, in bits per second). `None` when neither is set.
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<Option<Bandwidth>> {
        let ingress = annotation_rate(annotations, INGRESS_ANNOTATION)?;
        let egress = annotation_rate(annotations, EGRESS_ANNOTATION)?;
        if ingress.is_none() && egress.is_none() {
            return Ok(None);
        }
        let burst_for = |rate: Option<u64>| rate.map_or(0, |_| DEFAULT_BURST);
        Ok(Some(Bandwidth {
            ingress_rate: ingress.unwrap_or(0),
            ingress_burst: burst_for(ingress),
            egress_rate: egress.unwrap_or(0),
            egress_burst: burst_for(egress),
        }))
    }

    /// The `runtimeConfig.bandwidth` object.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "ingressRate": self.ingress_rate,
            "ingressBurst": self.ingress_burst,
            "egressRate": self.egress_rate,
            "egressBurst": self.egress_burst,
        })
    }
}

fn annotation_rate(annotations: &HashMap<String, String>, key: &str) -> Result<Option<u64>> {
    let Some(value) = annotations.get(key) else {
        return Ok(None);
    };
    let invalid = |reason: &str| Error::Bandwidth {
        key: key.into(),
        value: value.clone(),
        reason: reason.into(),
    };
    let rate = parse_quantity(value).ok_or_else(|| invalid("not a Kubernetes quantity"))?;
    if rate < MIN_RATE {
        return Err(invalid("unreasonably small (< 1kbit)"));
    }
    if rate > MAX_RATE {
        return Err(invalid("unreasonably large (> 1Pbit)"));
    }
    Ok(Some(rate))
}

/// Parses a non-negative Kubernetes quantity (`1500`, `1.5k`, `10M`, `2Gi`, `1e6`) and
/// rounds it up to an integer, as `Quantity.Value()` does.
fn parse_quantity(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let value = number * suffix_multiplier(suffix)?;
    if !value.is_finite() || value > u64::MAX as f64 {
        return None;
    }
    Some(value.ceil() as u64)
}

fn suffix_multiplier(suffix: &str) -> Option<f64> {
    let m = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_quantities() {
        let cases = [
            ("1500", 1500),
            ("1.5k", 1500),
            ("10M", 10_000_000),
            ("2Gi", 2 * 1024 * 1024 * 1024),
            ("1e6", 1_000_000),
            ("1E3", 1000),
            ("1500m", 2),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s), Some(want), "{s}");
        }
        for bad in ["", "M", "-1M", "1.2.3", "10MB", "1e", "1x"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_the_annotations() {
        let mut a = HashMap::new();
        assert_eq!(Bandwidth::from_annotations(&a).unwrap(), None);
        a.insert(EGRESS_ANNOTATION.to_string(), "10M".to_string());
        let bw = Bandwidth::from_annotations(&a).unwrap().unwrap();
        assert_eq!((bw.ingress_rate, bw.ingress_burst), (0, 0));
        assert_eq!(
            (bw.egress_rate, bw.egress_burst),
            (10_000_000, u32::MAX as u64)
        );

        a.insert(INGRESS_ANNOTATION.to_string(), "10".to_string());
        let err = Bandwidth::from_annotations(&a).unwrap_err().to_string();
        assert!(
            err.contains(INGRESS_ANNOTATION) && err.contains("small"),
            "{err}"
        );
        a.insert(INGRESS_ANNOTATION.to_string(), "2P".to_string());
        assert!(Bandwidth::from_annotations(&a).is_err());
    }
}
