//! CRI resources as systemd unit properties, the way runc's systemd driver maps them, so that
//! systemd itself writes (and on `daemon-reload` keeps) the limits of a container's scope.

use longshore_cgroups::Resources;

/// A property value, in the D-Bus types systemd expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `au` (process ids)
    U32s(Vec<u32>),
    /// `ay` (CPU and NUMA node masks)
    Bytes(Vec<u8>),
}

/// One unit property: its name and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name (`MemoryMax`).
    pub name: &'static str,
    /// Its value.
    pub value: Value,
}

/// systemd's "infinity" for numeric limits.
pub const INFINITY: u64 = u64::MAX;

/// The default CFS period, when a quota comes without one.
const DEFAULT_CPU_PERIOD_US: u64 = 100_000;

/// systemd keeps `CPUQuotaPerSecUSec` in 10 ms steps; runc rounds up to the next step so that
/// the quota systemd writes is never below the requested one.
const CPU_QUOTA_STEP_US: u64 = 10_000;

fn prop(name: &'static str, value: Value) -> Property {
    Property { name, value }
}

/// The properties of a new container scope: in `slice`, holding `pid`, with a delegated
/// subtree, accounting on, and `r` as limits. `unified` says whether the host is cgroup v2.
pub fn scope(
    description: &str,
    slice: &str,
    pid: u32,
    r: &Resources,
    unified: bool,
) -> Vec<Property> {
    let mut props = vec![
        prop("Description", Value::Str(description.to_string())),
        prop("Slice", Value::Str(slice.to_string())),
        prop("PIDs", Value::U32s(vec![pid])),
        // Like runc: no ordering against shutdown.target etc.; the container is not a service.
        prop("DefaultDependencies", Value::Bool(false)),
        prop("Delegate", Value::Bool(true)),
        prop("MemoryAccounting", Value::Bool(true)),
        prop("CPUAccounting", Value::Bool(true)),
        prop("IOAccounting", Value::Bool(true)),
        prop("TasksAccounting", Value::Bool(true)),
    ];
    props.extend(resources(r, unified));
    props
}

/// The properties of a new slice (a pod's, when kubelet names none): ordered under its parent
/// by its name, as systemd does for every slice.
pub fn slice(description: &str) -> Vec<Property> {
    vec![
        prop("Description", Value::Str(description.to_string())),
        prop("DefaultDependencies", Value::Bool(false)),
        prop("MemoryAccounting", Value::Bool(true)),
        prop("CPUAccounting", Value::Bool(true)),
        prop("IOAccounting", Value::Bool(true)),
        prop("TasksAccounting", Value::Bool(true)),
    ]
}

/// The limits of `r` as properties (for a new scope and for `SetUnitProperties`). Fields that
/// are unset are left out, so an update changes only what it names. Huge pages and the `unified`
/// keys systemd has no property for are not here: the caller writes those files itself.
pub fn resources(r: &Resources, unified: bool) -> Vec<Property> {
    let mut props = Vec::new();
    memory(r, unified, &mut props);
    cpu(r, unified, &mut props);
    if let Some(mask) = cpu_mask(&r.cpuset_cpus) {
        props.push(prop("AllowedCPUs", Value::Bytes(mask)));
    }
    if let Some(mask) = cpu_mask(&r.cpuset_mems) {
        props.push(prop("AllowedMemoryNodes", Value::Bytes(mask)));
    }
    match r.pids_limit {
        0 => {}
        n if n < 0 => props.push(prop("TasksMax", Value::U64(INFINITY))),
        n => props.push(prop("TasksMax", Value::U64(n as u64))),
    }
    if unified {
        unified_keys(r, &mut props);
    }
    props
}

fn limit(bytes: i64) -> u64 {
    if bytes < 0 { INFINITY } else { bytes as u64 }
}

fn memory(r: &Resources, unified: bool, props: &mut Vec<Property>) {
    if r.memory_limit_in_bytes == 0 {
        return;
    }
    let name = if unified { "MemoryMax" } else { "MemoryLimit" };
    props.push(prop(name, Value::U64(limit(r.memory_limit_in_bytes))));
    if !unified {
        return;
    }
    // CRI's swap figure counts memory plus swap (v1's memsw); v2's swap limit is the rest.
    let swap = r.memory_swap_limit_in_bytes;
    let swap_max = if swap < 0 || r.memory_limit_in_bytes < 0 {
        Some(INFINITY)
    } else if swap > 0 && swap >= r.memory_limit_in_bytes {
        Some((swap - r.memory_limit_in_bytes) as u64)
    } else {
        None
    };
    if let Some(v) = swap_max {
        props.push(prop("MemorySwapMax", Value::U64(v)));
    }
}

fn cpu(r: &Resources, unified: bool, props: &mut Vec<Property>) {
    if r.cpu_shares > 0 {
        let shares = r.cpu_shares as u64;
        if unified {
            props.push(prop("CPUWeight", Value::U64(shares_to_weight(shares))));
        } else {
            props.push(prop("CPUShares", Value::U64(shares)));
        }
    }
    if r.cpu_quota != 0 || r.cpu_period != 0 {
        props.push(prop(
            "CPUQuotaPerSecUSec",
            Value::U64(quota_per_sec(r.cpu_quota, r.cpu_period)),
        ));
    }
    if r.cpu_period > 0 {
        props.push(prop("CPUQuotaPeriodUSec", Value::U64(r.cpu_period as u64)));
    }
}

/// v1 CPU shares (2..=262144) to v2 weight (1..=10000), as runc and kubelet convert them.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The CPU time per second a quota allows, in systemd's 10 ms steps (rounded up); no quota
/// (`quota <= 0`) is infinity.
pub fn quota_per_sec(quota: i64, period: i64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period > 0 {
        period as u64
    } else {
        DEFAULT_CPU_PERIOD_US
    };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(CPU_QUOTA_STEP_US) * CPU_QUOTA_STEP_US
}

/// A CPU or node list (`0-3,7`) as the bit mask systemd takes: byte `n / 8`, bit `n % 8`.
/// An empty or unreadable list gives none (the files are written as they are by the caller).
pub fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let list = list.trim();
    if list.is_empty() {
        return None;
    }
    let mut mask = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = match part.trim().split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return None;
        }
        for n in lo..=hi {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    Some(mask)
}

/// `unified` keys that systemd owns the files of: given as properties, or systemd would write
/// its own value over them on the next reload.
fn unified_keys(r: &Resources, props: &mut Vec<Property>) {
    for (key, value) in &r.unified {
        let name = match key.as_str() {
            "memory.high" => "MemoryHigh",
            "memory.low" => "MemoryLow",
            "memory.min" => "MemoryMin",
            "memory.max" => "MemoryMax",
            "memory.swap.max" => "MemorySwapMax",
            "pids.max" => "TasksMax",
            "cpu.weight" => "CPUWeight",
            _ => continue,
        };
        let v = value.trim();
        let n = if v == "max" {
            Some(INFINITY)
        } else {
            v.parse::<u64>().ok()
        };
        if let Some(n) = n {
            props.retain(|p| p.name != name);
            props.push(prop(name, Value::U64(n)));
        }
    }
}

/// Whether `key` is a `unified` file that [`resources`] turns into a property.
pub fn is_property_key(key: &str) -> bool {
    matches!(
        key,
        "memory.high"
            | "memory.low"
            | "memory.min"
            | "memory.max"
            | "memory.swap.max"
            | "pids.max"
            | "cpu.weight"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn find<'a>(props: &'a [Property], name: &str) -> Option<&'a Value> {
        props.iter().find(|p| p.name == name).map(|p| &p.value)
    }

    #[test]
    fn kubelet_container_64mi_250m() {
        let r = Resources {
            memory_limit_in_bytes: 64 << 20,
            cpu_quota: 25_000,
            cpu_period: 100_000,
            cpu_shares: 256,
            ..Default::default()
        };
        let p = scope("c", "kubepods-burstable-pod1.slice", 42, &r, true);
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(67_108_864)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(250_000)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(10)));
        assert_eq!(find(&p, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(find(&p, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(
            find(&p, "Slice"),
            Some(&Value::Str("kubepods-burstable-pod1.slice".into()))
        );
        assert_eq!(
            find(&p, "MemorySwapMax"),
            None,
            "no swap figure: left alone"
        );
    }

    #[test]
    fn quota_rounds_up_to_10ms_steps() {
        assert_eq!(quota_per_sec(25_000, 100_000), 250_000);
        assert_eq!(quota_per_sec(1_000, 100_000), 10_000);
        assert_eq!(quota_per_sec(10_001, 100_000), 110_000);
        assert_eq!(quota_per_sec(50_000, 0), 500_000, "default period");
        assert_eq!(quota_per_sec(-1, 100_000), INFINITY);
        assert_eq!(quota_per_sec(200_000, 50_000), 4_000_000);
    }

    #[test]
    fn shares_become_weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1, "below the range: clamped");
    }

    #[test]
    fn v1_names() {
        let r = Resources {
            memory_limit_in_bytes: 1 << 30,
            cpu_shares: 512,
            ..Default::default()
        };
        let p = resources(&r, false);
        assert_eq!(find(&p, "MemoryLimit"), Some(&Value::U64(1 << 30)));
        assert_eq!(find(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(find(&p, "MemoryMax"), None);
    }

    #[test]
    fn swap_is_the_rest_of_memsw() {
        let r = Resources {
            memory_limit_in_bytes: 100,
            memory_swap_limit_in_bytes: 300,
            ..Default::default()
        };
        assert_eq!(
            find(&resources(&r, true), "MemorySwapMax"),
            Some(&Value::U64(200))
        );
        let r = Resources {
            memory_limit_in_bytes: 100,
            memory_swap_limit_in_bytes: -1,
            ..Default::default()
        };
        assert_eq!(
            find(&resources(&r, true), "MemorySwapMax"),
            Some(&Value::U64(INFINITY))
        );
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_mask("0"), Some(vec![1]));
        assert_eq!(cpu_mask("0-3,7"), Some(vec![0x8f]));
        assert_eq!(cpu_mask("9"), Some(vec![0, 2]));
        assert_eq!(cpu_mask(""), None);
        assert_eq!(cpu_mask("3-1"), None);
        assert_eq!(cpu_mask("x"), None);
    }

    #[test]
    fn unified_keys_systemd_owns_become_properties() {
        let mut r = Resources::default();
        r.unified.insert("memory.high".into(), "1000".into());
        r.unified.insert("pids.max".into(), "max".into());
        r.unified.insert("memory.oom.group".into(), "1".into());
        let p = resources(&r, true);
        assert_eq!(find(&p, "MemoryHigh"), Some(&Value::U64(1000)));
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(p.len(), 2, "memory.oom.group stays a file: {p:?}");
        assert!(!resources(&r, false).iter().any(|p| p.name == "MemoryHigh"));
    }

    #[test]
    fn unset_fields_are_left_out() {
        assert!(resources(&Resources::default(), true).is_empty());
    }
}
