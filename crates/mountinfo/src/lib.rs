//! `/proc/<pid>/mountinfo`, parsed once for everyone: the cgroup crate finds its hierarchies in
//! it, the spec builder a bind mount's propagation, the tests what they left mounted.
//!
//! The format is the kernel's (`Documentation/filesystems/proc.rst`, 3.5):
//! `<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>`,
//! with space, tab, newline and backslash in paths written as `\ooo` octal escapes.

#![warn(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};

/// The mount table of this process.
pub const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of a mountinfo table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount's id.
    pub id: u32,
    /// Its parent's id.
    pub parent_id: u32,
    /// `major:minor` of the filesystem's device.
    pub device: String,
    /// Which directory of the filesystem is the mount's root (`/` unless a bind mount).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    /// The filesystem type (`cgroup`, `cgroup2`, `overlay`, `ext4`...).
    pub fs_type: String,
    /// The filesystem's source (`overlay`, `/dev/vda`, `tmpfs`...).
    pub source: String,
    /// Per-superblock options (`rw,memory` for a v1 memory hierarchy).
    pub super_options: String,
}

impl MountInfo {
    /// Whether this mount propagates to peers (`shared:N`).
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }

    /// Whether it receives propagation from a master (`master:N`).
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("master:"))
    }
}

/// Parses a mountinfo table; malformed lines are skipped.
pub fn parse(table: &str) -> Vec<MountInfo> {
    table.lines().filter_map(parse_line).collect()
}

/// Reads and parses a mountinfo file (`/proc/self/mountinfo` or a test's copy).
pub fn read(path: &Path) -> io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

/// The mount table of this process.
pub fn read_self() -> io::Result<Vec<MountInfo>> {
    read(Path::new(PROC_SELF_MOUNTINFO))
}

/// Mount points of this process at or below `dir`, deepest last.
pub fn mounted_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(read_self()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect())
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    if left.len() < 6 {
        return None;
    }
    let mut right = right.split(' ');
    Some(MountInfo {
        id: left[0].parse().ok()?,
        parent_id: left[1].parse().ok()?,
        device: left[2].to_string(),
        root: unescape(left[3]),
        mount_point: PathBuf::from(unescape(left[4])),
        mount_options: left[5].to_string(),
        optional: left[6..].iter().map(|s| s.to_string()).collect(),
        fs_type: right.next()?.to_string(),
        source: unescape(right.next()?),
        super_options: right.next().unwrap_or("").to_string(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 20 0:22 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:2 - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 / /mnt/my\\040cgroup rw - cgroup2 none rw,nsdelegate
garbage line
90 22 0:50 / /run/x rw - overlay overlay rw,lowerdir=/a:/b,upperdir=/u,workdir=/w
";

    #[test]
    fn every_field_with_optional_fields_and_escapes() {
        let t = parse(TABLE);
        assert_eq!(t.len(), 4, "the garbage line is skipped");
        assert_eq!(t[0].mount_point, PathBuf::from("/"));
        assert!(t[0].is_shared() && !t[0].is_slave());
        assert_eq!(t[1].root, "/docker/abc");
        assert_eq!(t[1].optional, vec!["shared:9", "master:2"]);
        assert_eq!(t[1].fs_type, "cgroup");
        assert_eq!(t[1].super_options, "rw,cpu,cpuacct");
        assert_eq!(t[2].mount_point, PathBuf::from("/mnt/my cgroup"));
        assert!(t[2].optional.is_empty());
        assert_eq!((t[3].id, t[3].parent_id), (90, 22));
        assert_eq!(t[3].source, "overlay");
    }

    #[test]
    fn unescapes_octal_only() {
        assert_eq!(unescape(r"a\134b\040c"), r"a\b c");
        assert_eq!(unescape(r"tail\04"), r"tail\04");
        assert_eq!(unescape(r"\999"), r"\999");
    }

    #[test]
    fn this_process_has_a_root_mount() {
        let t = read_self().unwrap();
        assert!(t.iter().any(|m| m.mount_point == Path::new("/")));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn escaped_paths_come_back(path in "/[a-z \\\\\t]{0,30}") {
            let escaped: String = path.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\t' => "\\011".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            let line = format!("1 0 0:1 / {escaped} rw - tmpfs tmpfs rw\n");
            let t = parse(&line);
            proptest::prop_assert_eq!(t.len(), 1);
            proptest::prop_assert_eq!(&t[0].mount_point, &PathBuf::from(&path));
        }
    }
}
