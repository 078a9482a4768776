//! Cgroup paths: validated absolute paths inside a hierarchy, and how kubelet's `cgroup_parent`
//! maps onto them for the cgroupfs and systemd drivers.

use std::fmt;

/// Suffix of a systemd slice unit name.
const SLICE_SUFFIX: &str = ".slice";
/// The systemd root slice; it expands to the hierarchy root.
const ROOT_SLICE: &str = "-.slice";
/// Prefix of the scope name a container cgroup gets under the systemd driver.
const SCOPE_PREFIX: &str = "longshore-";
/// Suffix of a systemd scope unit name.
const SCOPE_SUFFIX: &str = ".scope";

/// Why a cgroup path or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("cgroup path {path:?} is not absolute")]
    NotAbsolute {
        /// The refused path.
        path: String,
    },
    /// The path has an empty, `.` or `..` component, or a NUL or newline byte.
    #[error("cgroup path {path:?} has an invalid component {component:?}")]
    BadComponent {
        /// The refused path.
        path: String,
        /// The offending component.
        component: String,
    },
    /// A child name is not exactly one valid path component.
    #[error("cgroup name {name:?} is not a single valid path component")]
    BadName {
        /// The refused name.
        name: String,
    },
    /// A systemd slice name does not follow systemd's `a-b-c.slice` form.
    #[error("invalid systemd slice name {slice:?}: {reason}")]
    BadSlice {
        /// The refused slice name.
        slice: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How kubelet names cgroups: the `cgroupDriver` of its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// Plain paths: `cgroup_parent` is `/kubepods/burstable/pod<uid>`, containers are `<id>`.
    #[default]
    Cgroupfs,
    /// systemd unit names: `cgroup_parent` is `kubepods-burstable-pod<uid>.slice`, containers are
    /// `longshore-<id>.scope`. The directories are still made on cgroupfs by us; no D-Bus.
    Systemd,
}

impl Driver {
    /// The leaf name of a container's cgroup under its pod's cgroup for this driver.
    pub fn container_name(self, container_id: &str) -> String {
        match self {
            Driver::Cgroupfs => container_id.to_string(),
            Driver::Systemd => format!("{SCOPE_PREFIX}{container_id}{SCOPE_SUFFIX}"),
        }
    }
}

/// An absolute path inside a cgroup hierarchy, such as `/kubepods/burstable/pod<uid>/<id>`.
///
/// Always starts with `/`; `/` itself is the hierarchy root. No component is empty, `.` or `..`,
/// so the path can be joined under a mount point without escaping it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CgroupPath(String);

impl CgroupPath {
    /// The hierarchy root, `/`.
    pub fn root() -> CgroupPath {
        CgroupPath("/".to_string())
    }

    /// Validate an absolute cgroup path.
    pub fn new(path: &str) -> Result<CgroupPath, PathError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathError::NotAbsolute {
                path: path.to_string(),
            });
        };
        if rest.is_empty() {
            return Ok(CgroupPath::root());
        }
        for component in rest.split('/') {
            if !valid_component(component) {
                return Err(PathError::BadComponent {
                    path: path.to_string(),
                    component: component.to_string(),
                });
            }
        }
        Ok(CgroupPath(path.to_string()))
    }

    /// Turn kubelet's `cgroup_parent` into a path under `root` (`/` in production).
    ///
    /// With [`Driver::Cgroupfs`] the parent is a path (`/kubepods/burstable/pod123`; a missing
    /// leading `/` is tolerated). With [`Driver::Systemd`] a slice name such as
    /// `kubepods-burstable-pod123.slice` expands to
    /// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice`, as runc does;
    /// an absolute path is taken as is. An empty parent means `root` itself.
    pub fn resolve(
        root: &CgroupPath,
        parent: &str,
        driver: Driver,
    ) -> Result<CgroupPath, PathError> {
        if parent.is_empty() {
            return Ok(root.clone());
        }
        let relative = match driver {
            Driver::Systemd if !parent.starts_with('/') => expand_slice(parent)?,
            _ if parent.starts_with('/') => CgroupPath::new(parent)?,
            _ => CgroupPath::new(&format!("/{parent}"))?,
        };
        Ok(root.join(&relative))
    }

    /// The path as a string, starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the hierarchy root `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components below the root, top first (none for `/`).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The path without its leading `/`, for joining under a mount point.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// A child cgroup named `name` (one component, e.g. a container id or `longshore-<id>.scope`).
    pub fn child(&self, name: &str) -> Result<CgroupPath, PathError> {
        if !valid_component(name) {
            return Err(PathError::BadName {
                name: name.to_string(),
            });
        }
        Ok(self.join_unchecked(name))
    }

    /// `other`'s components appended below this path.
    pub fn join(&self, other: &CgroupPath) -> CgroupPath {
        if other.is_root() {
            return self.clone();
        }
        self.join_unchecked(other.relative())
    }

    /// The parent path; `None` for `/`.
    pub fn parent(&self) -> Option<CgroupPath> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) | None => Some(CgroupPath::root()),
            Some(i) => Some(CgroupPath(self.0[..i].to_string())),
        }
    }

    /// Whether `self` is `other` or one of its ancestors (compared by whole components).
    pub fn is_ancestor_or_self_of(&self, other: &CgroupPath) -> bool {
        self.is_root()
            || other.0 == self.0
            || (other.0.starts_with(&self.0) && other.0.as_bytes().get(self.0.len()) == Some(&b'/'))
    }

    /// This path relative to `ancestor` (without a leading `/`), if `ancestor` contains it.
    pub fn strip_prefix(&self, ancestor: &CgroupPath) -> Option<&str> {
        if !ancestor.is_ancestor_or_self_of(self) {
            return None;
        }
        if ancestor.is_root() {
            return Some(self.relative());
        }
        Some(self.0[ancestor.0.len()..].trim_start_matches('/'))
    }

    /// Every path from the first component down to `self`, top first (empty for `/`).
    pub fn lineage(&self) -> Vec<CgroupPath> {
        let mut out = Vec::new();
        let mut current = CgroupPath::root();
        for component in self.components() {
            current = current.join_unchecked(component);
            out.push(current.clone());
        }
        out
    }

    fn join_unchecked(&self, relative: &str) -> CgroupPath {
        if self.is_root() {
            CgroupPath(format!("/{relative}"))
        } else {
            CgroupPath(format!("{}/{relative}", self.0))
        }
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_component(component: &str) -> bool {
    !component.is_empty()
        && component != "."
        && component != ".."
        && !component.contains(['/', '\0', '\n'])
}

/// Expand a systemd slice name into its path: `a-b.slice` lives in `/a.slice/a-b.slice`.
fn expand_slice(slice: &str) -> Result<CgroupPath, PathError> {
    let bad = |reason| PathError::BadSlice {
        slice: slice.to_string(),
        reason,
    };
    if slice.contains('/') {
        return Err(bad("contains '/'"));
    }
    if slice == ROOT_SLICE {
        return Ok(CgroupPath::root());
    }
    let Some(name) = slice.strip_suffix(SLICE_SUFFIX) else {
        return Err(bad("does not end in .slice"));
    };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    let mut path = CgroupPath::root();
    let mut prefix = String::new();
    for part in name.split('-') {
        // systemd refuses "a--b.slice", "-a.slice" and "a-.slice".
        if part.is_empty() {
            return Err(bad("empty component between dashes"));
        }
        prefix.push_str(part);
        path = path
            .child(&format!("{prefix}{SLICE_SUFFIX}"))
            .map_err(|_| bad("invalid characters"))?;
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CgroupPath {
        CgroupPath::new(s).unwrap()
    }

    #[test]
    fn validates_paths() {
        assert_eq!(p("/").as_str(), "/");
        assert_eq!(p("/a/b").as_str(), "/a/b");
        for bad in [
            "", "a/b", "/a//b", "/a/", "/a/../b", "/..", "/a/./b", "/a\0b", "/a\nb",
        ] {
            assert!(CgroupPath::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parent_child_join_and_prefix() {
        let pod = p("/kubepods/burstable/pod1");
        let ctr = pod.child("abc").unwrap();
        assert_eq!(ctr.as_str(), "/kubepods/burstable/pod1/abc");
        assert_eq!(ctr.parent().unwrap(), pod);
        assert_eq!(p("/a").parent().unwrap(), CgroupPath::root());
        assert_eq!(CgroupPath::root().parent(), None);
        assert!(CgroupPath::root().child("..").is_err());
        assert!(CgroupPath::root().child("a/b").is_err());
        assert!(CgroupPath::root().child("").is_err());
        assert_eq!(p("/x").join(&p("/y/z")).as_str(), "/x/y/z");
        assert_eq!(CgroupPath::root().join(&p("/y")).as_str(), "/y");
        assert_eq!(p("/x").join(&CgroupPath::root()).as_str(), "/x");
        assert!(pod.is_ancestor_or_self_of(&ctr));
        assert!(pod.is_ancestor_or_self_of(&pod));
        assert!(!p("/kubepods/burst").is_ancestor_or_self_of(&pod));
        assert!(!ctr.is_ancestor_or_self_of(&pod));
        assert_eq!(ctr.strip_prefix(&pod), Some("abc"));
        assert_eq!(
            ctr.strip_prefix(&CgroupPath::root()),
            Some("kubepods/burstable/pod1/abc")
        );
        assert_eq!(pod.strip_prefix(&pod), Some(""));
        assert_eq!(pod.strip_prefix(&ctr), None);
        let lineage: Vec<String> = ctr.lineage().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lineage,
            [
                "/kubepods",
                "/kubepods/burstable",
                "/kubepods/burstable/pod1",
                "/kubepods/burstable/pod1/abc"
            ]
        );
        assert!(CgroupPath::root().lineage().is_empty());
    }

    #[test]
    fn resolves_cgroupfs_parent_under_root() {
        let root = p("/test/base");
        let got = CgroupPath::resolve(&root, "/kubepods/burstable/pod123", Driver::Cgroupfs);
        assert_eq!(
            got.unwrap().as_str(),
            "/test/base/kubepods/burstable/pod123"
        );
        let got = CgroupPath::resolve(&CgroupPath::root(), "kubepods/pod1", Driver::Cgroupfs);
        assert_eq!(got.unwrap().as_str(), "/kubepods/pod1");
        assert_eq!(
            CgroupPath::resolve(&root, "", Driver::Cgroupfs).unwrap(),
            root
        );
        assert!(CgroupPath::resolve(&root, "/kubepods/../etc", Driver::Cgroupfs).is_err());
        assert!(CgroupPath::resolve(&root, "kubepods-pod1.slice", Driver::Cgroupfs).is_ok());
    }

    #[test]
    fn expands_systemd_slices() {
        let root = CgroupPath::root();
        let got = CgroupPath::resolve(&root, "kubepods-burstable-pod123.slice", Driver::Systemd);
        assert_eq!(
            got.unwrap().as_str(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice"
        );
        let got = CgroupPath::resolve(&p("/t"), "kubepods.slice", Driver::Systemd);
        assert_eq!(got.unwrap().as_str(), "/t/kubepods.slice");
        assert_eq!(
            CgroupPath::resolve(&p("/t"), "-.slice", Driver::Systemd).unwrap(),
            p("/t")
        );
        let got = CgroupPath::resolve(&root, "/kubepods.slice/x.slice", Driver::Systemd);
        assert_eq!(got.unwrap().as_str(), "/kubepods.slice/x.slice");
        for bad in [
            "kubepods",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(
                CgroupPath::resolve(&root, bad, Driver::Systemd).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn container_names_per_driver() {
        assert_eq!(Driver::Cgroupfs.container_name("abc"), "abc");
        assert_eq!(Driver::Systemd.container_name("abc"), "longshore-abc.scope");
    }
}
