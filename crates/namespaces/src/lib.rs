//! A pod's namespaces, made once and pinned so every container of the pod can join them.
//!
//! [`pin`] makes new network, IPC and UTS namespaces on a short-lived thread (these three can be
//! unshared by one thread of a multi-threaded process), sets the hostname and namespaced sysctls
//! inside them, brings `lo` up, and bind-mounts each namespace file under the pod's state folder,
//! as CRI-O's `pinns` does. No pause process is needed for them. A shared PID namespace needs a
//! live PID 1: [`PodInit`] starts `longshore pod-init` for that. A pod with its own user namespace
//! gets it, and the others owned by it, from [`pin_with_user_namespace`]. [`unpin`] undoes it all.

mod error;
mod kind;
mod loopback;
mod pin;
mod pod_init;
mod sysctl;
mod userns;

pub use error::NamespaceError;
pub use kind::NamespaceKind;
pub use pin::{PinRequest, PinnedNamespaces, pin, unpin};
pub use pod_init::{PodInit, pod_init_main};
pub use sysctl::{SysctlNamespace, classify_sysctl};
pub use userns::{IdMap, UserNamespaceRequest, pin_with_user_namespace, pod_userns_main};
