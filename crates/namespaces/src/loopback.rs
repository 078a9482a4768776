//! Bringing `lo` up in a fresh network namespace, so a pod has loopback even before (or without)
//! a CNI loopback plugin.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::NamespaceError;

nix::ioctl_readwrite_bad!(get_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Sets IFF_UP on `lo` in the calling thread's network namespace.
pub(crate) fn bring_up_lo() -> Result<(), NamespaceError> {
    let sock: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|source| NamespaceError::Sys {
        op: "socket for lo",
        source,
    })?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the fd is a live socket and req is a valid ifreq naming "lo".
    unsafe { get_flags(sock.as_raw_fd(), &mut req) }.map_err(|source| NamespaceError::Sys {
        op: "SIOCGIFFLAGS lo",
        source,
    })?;
    // SAFETY: reading the flags member the kernel just filled in.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS reads the ifreq.
    unsafe { set_flags(sock.as_raw_fd(), &req) }.map_err(|source| NamespaceError::Sys {
        op: "SIOCSIFFLAGS lo up",
        source,
    })?;
    Ok(())
}
