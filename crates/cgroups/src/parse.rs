//! Parsers for the text formats of cgroupfs files. Pure functions over the file's content.

use crate::stats::{Psi, PsiLine};

/// The v2 spelling of "no limit".
pub(crate) const MAX: &str = "max";

/// v1 reports "no limit" as a page-rounded `i64::MAX`; anything this large means none.
const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// A file holding one unsigned number (`memory.current`, `pids.current`...).
pub(crate) fn single_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse()
        .map_err(|_| format!("expected a number, found {t:?}"))
}

/// A limit file: `max`, a v1 "unlimited" value or a number. `None` means no limit.
pub(crate) fn limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t == MAX {
        return Ok(None);
    }
    // v1 writes -1 back as a huge value, but older kernels may show "-1" itself.
    if t == "-1" {
        return Ok(None);
    }
    let n = single_u64(t)?;
    Ok((n < UNLIMITED_THRESHOLD).then_some(n))
}

/// The value of `key` in a flat-keyed file (`key value` per line): `memory.stat`, `cpu.stat`,
/// `memory.events`, `memory.oom_control`. `None` if the key is absent or not a number.
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A PSI file (`cpu.pressure`, `memory.pressure`, `io.pressure`):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and optionally a `full ...` line.
pub(crate) fn psi(text: &str) -> Result<Psi, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let Some((kind, fields)) = line.split_once(' ') else {
            continue;
        };
        match kind {
            "some" => some = Some(psi_line(fields)?),
            "full" => full = Some(psi_line(fields)?),
            _ => {}
        }
    }
    let some = some.ok_or_else(|| "no \"some\" line".to_string())?;
    Ok(Psi { some, full })
}

fn psi_line(fields: &str) -> Result<PsiLine, String> {
    let mut line = PsiLine::default();
    for field in fields.split_whitespace() {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("bad PSI field {field:?}"))?;
        let bad = || format!("bad PSI value {field:?}");
        match key {
            "avg10" => line.avg10 = value.parse().map_err(|_| bad())?,
            "avg60" => line.avg60 = value.parse().map_err(|_| bad())?,
            "avg300" => line.avg300 = value.parse().map_err(|_| bad())?,
            "total" => line.total_us = value.parse().map_err(|_| bad())?,
            _ => {}
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_numbers_and_limits() {
        assert_eq!(single_u64("42\n"), Ok(42));
        assert!(single_u64("max\n").is_err());
        assert_eq!(limit("max\n"), Ok(None));
        assert_eq!(limit("9223372036854771712\n"), Ok(None));
        assert_eq!(limit("-1\n"), Ok(None));
        assert_eq!(limit("33554432\n"), Ok(Some(33554432)));
        assert!(limit("lots").is_err());
    }

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "oom"), Some(2));
        assert_eq!(keyed(events, "missing"), None);
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(oom_control, "oom_kill"), Some(3));
    }

    #[test]
    fn psi_with_and_without_full() {
        let cpu = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n\
                   full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let got = psi(cpu).unwrap();
        assert_eq!(got.some.avg10, 1.5);
        assert_eq!(got.some.avg60, 0.25);
        assert_eq!(got.some.total_us, 123456);
        assert_eq!(got.full.unwrap().total_us, 0);
        let old = psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert!(old.full.is_none());
        assert!(psi("").is_err());
        assert!(psi("some avg10=x\n").is_err());
    }
}
