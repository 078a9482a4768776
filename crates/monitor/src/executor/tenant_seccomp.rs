//! Seccomp for processes exec'd into a running container by the embedded executor.
//!
//! youki's libcontainer (0.7) builds an exec'd ("tenant") process from the container's
//! namespaces, cgroup, capabilities and user, but not its seccomp filter, so without this an exec
//! would escape the container's syscall filter. This libcontainer workload executor installs the
//! container's filter as the very last step before `execve`, then hands over to libcontainer's
//! default executor. At that point the process has already dropped its capabilities: without
//! CAP_SYS_ADMIN the kernel only accepts a filter under no_new_privs, so such a process gets
//! no_new_privs too (runc avoids this by loading the filter earlier, which libcontainer does not
//! let a caller do).

use libcontainer::oci_spec::runtime::{LinuxSeccomp, Spec};
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

/// Runs the workload with the container's seccomp filter.
#[derive(Clone)]
pub(crate) struct TenantSeccomp {
    /// The container's filter, read from its bundle before the exec process is made.
    pub(crate) seccomp: Option<LinuxSeccomp>,
}

impl Executor for TenantSeccomp {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(seccomp) = &self.seccomp {
            install(seccomp)?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

fn install(seccomp: &LinuxSeccomp) -> Result<(), ExecutorError> {
    let has_sys_admin = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false);
    if !has_sys_admin {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes no pointers and only affects this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(ExecutorError::Other(format!(
                "setting no_new_privs for the exec's seccomp filter: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    libcontainer::seccomp::initialize_seccomp(seccomp)
        .map(|_| ())
        .map_err(|e| {
            ExecutorError::Other(format!("installing the container's seccomp filter: {e}"))
        })
}
