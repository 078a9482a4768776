//! The kernel's cgroup controllers, by the names they carry in mountinfo and `cgroup.controllers`.

use std::fmt;

/// A cgroup controller (v1 "subsystem"). Only controllers the kernel knows are listed; named
/// v1 hierarchies such as `name=systemd` carry no controller and are not managed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// CPU bandwidth and weight (`cpu.*`).
    Cpu,
    /// v1 CPU accounting (`cpuacct.*`).
    Cpuacct,
    /// CPU and memory-node placement (`cpuset.*`).
    Cpuset,
    /// Memory limits and accounting (`memory.*`).
    Memory,
    /// Process-count limit (`pids.*`).
    Pids,
    /// v1 freezer (`freezer.state`); v2 freezes through `cgroup.freeze` instead.
    Freezer,
    /// Huge page limits (`hugetlb.<size>.*`).
    Hugetlb,
    /// v1 device access lists.
    Devices,
    /// v1 block I/O.
    Blkio,
    /// v2 block I/O.
    Io,
    /// v1 network classifier.
    NetCls,
    /// v1 network priority.
    NetPrio,
    /// perf events.
    PerfEvent,
    /// RDMA resources.
    Rdma,
    /// Miscellaneous scalar resources.
    Misc,
}

impl Controller {
    const ALL: [Controller; 15] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Freezer,
        Controller::Hugetlb,
        Controller::Devices,
        Controller::Blkio,
        Controller::Io,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The controller's kernel name (`"cpu"`, `"memory"`, `"net_cls"`...).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Hugetlb => "hugetlb",
            Controller::Devices => "devices",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The controller with this kernel name, if it is one we know.
    pub fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Controller::ALL {
            assert_eq!(Controller::from_name(c.name()), Some(c));
        }
        assert_eq!(Controller::from_name("name=systemd"), None);
        assert_eq!(Controller::from_name("rw"), None);
    }
}
