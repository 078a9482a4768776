use nix::sched::CloneFlags;

/// The namespaces a pod can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamespaceKind {
    /// Network: interfaces, addresses, routes, ports.
    Net,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Hostname and domain name.
    Uts,
    /// Process IDs; needs a live PID 1, see [`crate::PodInit`].
    Pid,
    /// User and group ids, and the capabilities that go with them.
    User,
}

impl NamespaceKind {
    /// The name of the namespace file in `/proc/<pid>/ns/` and of the pin file.
    pub fn file_name(self) -> &'static str {
        match self {
            NamespaceKind::Net => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Pid => "pid",
            NamespaceKind::User => "user",
        }
    }

    /// The clone flag that makes a new namespace of this kind.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
            NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
            NamespaceKind::User => CloneFlags::CLONE_NEWUSER,
        }
    }
}
