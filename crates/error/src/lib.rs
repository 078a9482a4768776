//! What kind of failure an error is, in one vocabulary shared by every crate.
//!
//! Library crates keep their own `thiserror` enums, which say what went wrong and on which path
//! or id; each also implements [`Classify`], which says what *kind* of failure that is. The
//! daemon turns a [`Kind`] into a gRPC status code in exactly one place (`src/server/status.rs`),
//! so a handler can use `?` on any crate's error and the client still gets the right code:
//! a bad request is `InvalidArgument`, a busy cgroup is `Unavailable`, a broken disk `Internal`.

#![warn(missing_docs)]

use std::io;

/// The kinds of failure a CRI client must tell apart. Named after the gRPC codes they become,
/// because that is what a reader of a handler needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request is wrong and retrying it unchanged cannot help.
    InvalidArgument,
    /// The pod, container, image or file named does not exist.
    NotFound,
    /// The thing to create exists already (a reserved name).
    AlreadyExists,
    /// The request is fine but the state does not allow it now (a running container, a
    /// missing kernel feature, hostile content that was refused).
    FailedPrecondition,
    /// A passing failure: busy, interrupted, a registry or bus that did not answer. Retry.
    Unavailable,
    /// The operation did not finish in its time.
    DeadlineExceeded,
    /// Out of space, memory, descriptors or ids.
    ResourceExhausted,
    /// Credentials were refused.
    Unauthenticated,
    /// Not allowed.
    PermissionDenied,
    /// Longshore does not do this (yet).
    Unimplemented,
    /// The workload's own failure, as the runtime reported it (a container whose command
    /// cannot run), as containerd reports it.
    Unknown,
    /// Everything else: a bug, a broken disk, a corrupt record.
    Internal,
}

/// An error that knows what kind of failure it is.
pub trait Classify: std::error::Error {
    /// The kind of failure, for the client's status code.
    fn kind(&self) -> Kind;
}

/// The kind of an OS error number: the errno says whether the caller, the state or the machine
/// is at fault.
pub fn kind_of_errno(errno: i32) -> Kind {
    match errno {
        libc::EINVAL | libc::ERANGE | libc::ENAMETOOLONG | libc::E2BIG | libc::ELOOP => {
            Kind::InvalidArgument
        }
        libc::ENOENT | libc::ESRCH | libc::ENXIO | libc::ENODEV => Kind::NotFound,
        libc::EEXIST => Kind::AlreadyExists,
        libc::EBUSY | libc::EAGAIN | libc::EINTR => Kind::Unavailable,
        libc::ETIMEDOUT => Kind::DeadlineExceeded,
        libc::ENOSPC | libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::EDQUOT => {
            Kind::ResourceExhausted
        }
        libc::EACCES | libc::EPERM | libc::EROFS => Kind::PermissionDenied,
        libc::ENOSYS | libc::EOPNOTSUPP => Kind::FailedPrecondition,
        _ => Kind::Internal,
    }
}

/// The kind of an I/O error: by its errno when it has one, else by its `io::ErrorKind`.
pub fn kind_of_io(e: &io::Error) -> Kind {
    if let Some(errno) = e.raw_os_error() {
        return kind_of_errno(errno);
    }
    match e.kind() {
        io::ErrorKind::NotFound => Kind::NotFound,
        io::ErrorKind::AlreadyExists => Kind::AlreadyExists,
        io::ErrorKind::PermissionDenied => Kind::PermissionDenied,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => Kind::InvalidArgument,
        io::ErrorKind::TimedOut => Kind::DeadlineExceeded,
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => Kind::Unavailable,
        io::ErrorKind::OutOfMemory => Kind::ResourceExhausted,
        io::ErrorKind::Unsupported => Kind::FailedPrecondition,
        _ => Kind::Internal,
    }
}

/// The kind of the first OS error (an `io::Error` or an errno) in `e`'s source chain, if any.
/// Libraries whose errors wrap kernel answers use it: EINVAL from a cgroup file is the
/// request's fault, EBUSY is passing, EIO is the machine's.
pub fn os_kind_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(kind_of_io(io));
        }
        if let Some(errno) = e.downcast_ref::<nix::errno::Errno>() {
            return Some(kind_of_errno(*errno as i32));
        }
        next = e.source();
    }
    None
}

impl Classify for io::Error {
    fn kind(&self) -> Kind {
        kind_of_io(self)
    }
}

impl Classify for nix::errno::Errno {
    fn kind(&self) -> Kind {
        kind_of_errno(*self as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_says_whose_fault() {
        assert_eq!(kind_of_errno(libc::EINVAL), Kind::InvalidArgument);
        assert_eq!(kind_of_errno(libc::EBUSY), Kind::Unavailable);
        assert_eq!(kind_of_errno(libc::EIO), Kind::Internal);
        assert_eq!(kind_of_errno(libc::ENOSPC), Kind::ResourceExhausted);
        assert_eq!(kind_of_errno(libc::ENOENT), Kind::NotFound);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("writing memory.max: {0}")]
    struct Wrapped(#[source] io::Error);

    #[test]
    fn the_chain_is_searched_for_the_os_error() {
        let e = Wrapped(io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!(os_kind_in_chain(&e), Some(Kind::InvalidArgument));
        let e = Wrapped(io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(os_kind_in_chain(&e), Some(Kind::Internal));
    }

    #[test]
    fn io_errors_without_errno_use_their_kind() {
        let e = io::Error::new(io::ErrorKind::InvalidData, "bad json");
        assert_eq!(kind_of_io(&e), Kind::InvalidArgument);
        let e = io::Error::from_raw_os_error(libc::EBUSY);
        assert_eq!(kind_of_io(&e), Kind::Unavailable);
    }
}
