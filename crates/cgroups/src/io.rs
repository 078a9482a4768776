//! Block I/O per device: v2 `io.stat`, v1 `blkio.throttle.io_service{_bytes,d}_recursive`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fs::{self, FsError};

/// v2: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..` per device.
const IO_STAT: &str = "io.stat";
/// v1: `MAJ:MIN Read|Write|Sync|Async|Discard|Total N` lines, bytes and operations.
const BLKIO_BYTES: &str = "blkio.throttle.io_service_bytes_recursive";
const BLKIO_IOS: &str = "blkio.throttle.io_serviced_recursive";

/// Bytes and operations of one block device, cumulative.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoDevice {
    /// The device's major number.
    pub major: u64,
    /// Its minor number.
    pub minor: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Reads completed.
    pub reads: u64,
    /// Writes completed.
    pub writes: u64,
}

/// v2 `io.stat` in `dir`; none when the io controller is not enabled there.
pub(crate) fn v2(dir: &Path) -> Result<Vec<IoDevice>, FsError> {
    let Some(text) = fs::read_optional(&dir.join(IO_STAT))? else {
        return Ok(Vec::new());
    };
    Ok(text.lines().filter_map(parse_v2_line).collect())
}

fn parse_v2_line(line: &str) -> Option<IoDevice> {
    let mut fields = line.split_whitespace();
    let (major, minor) = device(fields.next()?)?;
    let mut d = IoDevice {
        major,
        minor,
        ..Default::default()
    };
    for field in fields {
        let (key, value) = field.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        match key {
            "rbytes" => d.read_bytes = value,
            "wbytes" => d.write_bytes = value,
            "rios" => d.reads = value,
            "wios" => d.writes = value,
            _ => {}
        }
    }
    Some(d)
}

/// v1 blkio files in `dir` (the blkio hierarchy's); none when the kernel lacks them.
pub(crate) fn v1(dir: &Path) -> Result<Vec<IoDevice>, FsError> {
    let mut devices: BTreeMap<(u64, u64), IoDevice> = BTreeMap::new();
    for (file, bytes) in [(BLKIO_BYTES, true), (BLKIO_IOS, false)] {
        let Some(text) = fs::read_optional(&dir.join(file))? else {
            continue;
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(dev), Some(op), Some(value)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Some((major, minor)), Ok(value)) = (device(dev), value.parse::<u64>()) else {
                continue;
            };
            let d = devices.entry((major, minor)).or_insert(IoDevice {
                major,
                minor,
                ..Default::default()
            });
            match (op, bytes) {
                ("Read", true) => d.read_bytes = value,
                ("Write", true) => d.write_bytes = value,
                ("Read", false) => d.reads = value,
                ("Write", false) => d.writes = value,
                _ => {}
            }
        }
    }
    Ok(devices.into_values().collect())
}

fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(IO_STAT),
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\nbad\n",
        )
        .unwrap();
        let want = IoDevice {
            major: 8,
            minor: 0,
            read_bytes: 4096,
            write_bytes: 8192,
            reads: 1,
            writes: 2,
        };
        assert_eq!(v2(dir.path()).unwrap(), std::slice::from_ref(&want));
        std::fs::write(
            dir.path().join(BLKIO_BYTES),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(BLKIO_IOS), "8:0 Read 1\n8:0 Write 2\n").unwrap();
        assert_eq!(v1(dir.path()).unwrap(), [want]);
        assert!(v2(&dir.path().join("none")).unwrap().is_empty());
    }
}
