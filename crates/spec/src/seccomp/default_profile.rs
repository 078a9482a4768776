//! The built-in `RuntimeDefault` seccomp profile.
//!
//! Behaviour matches the default profile of containerd and moby: an allow-list returning EPERM
//! for everything else; `socket` for every address family but AF_ALG and AF_VSOCK; only the
//! harmless `personality` personas; `clone` without namespace flags and `clone3` answering
//! ENOSYS (so libc falls back to `clone`) unless the container holds CAP_SYS_ADMIN; and groups
//! of syscalls unlocked by the capability that guards them in the kernel.
//!
//! It is written as a Docker-format [`Profile`] so the same resolution code (capabilities,
//! architecture, kernel version) handles it and node-local profiles alike. Every argument rule
//! compares a single argument: some executors add each comparison as its own rule, which would
//! turn a multi-argument rule into an OR.

use super::{ArchMap, Condition, Profile, Rule, RuleArg};

/// Allowed for every container on every architecture. Names the running kernel or libseccomp
/// does not know are skipped by the executor.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // a–c
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    // d–f
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
    "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
    "futex_waitv", "futex_wake", "futimesat",
    // g
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32",
    "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
    "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
    "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
    "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "getxattrat",
    // i–l
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
    "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lsm_get_self_attr", "lsm_list_modules",
    "lsm_set_self_attr", "lstat", "lstat64",
    // m–n
    "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "_newselect",
    // o–p
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2",
    // r
    "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    // s
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
    "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo",
    // t–w
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate",
    "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
    "write", "writev",
];

/// Allowed from Linux 4.8, which stopped ptrace from bypassing seccomp.
const TRACING: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Architecture-specific calls, by Go architecture name.
#[rustfmt::skip]
const BY_ARCH: &[(&str, &[&str])] = &[
    ("amd64", &["arch_prctl", "modify_ldt"]),
    ("386", &["modify_ldt"]),
    ("arm64", &[
        "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
        "set_tls",
    ]),
    ("arm", &[
        "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
        "set_tls",
    ]),
    ("ppc64le", &["sync_file_range2", "swapcontext"]),
    ("s390x", &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]),
    ("riscv64", &["riscv_flush_icache", "riscv_hwprobe"]),
];

/// Calls unlocked by a capability in the bounding set.
#[rustfmt::skip]
const BY_CAP: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_ADMIN", &[
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
        "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
        "umount2", "unshare",
    ]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &[
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
    ]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `personality(2)` personas allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
/// the query value 0xffffffff.
const PERSONAS: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// Address families `socket(2)` refuses: AF_ALG (38) and AF_VSOCK (40).
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// Every namespace flag of `clone(2)`.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Architectures a filter covers, keyed by the native one (compat ABIs included, so a 32-bit
/// binary cannot escape the filter).
const ARCH_MAP: &[(&str, &[&str])] = &[
    ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
    ("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", &[]),
    ("SCMP_ARCH_PPC64LE", &[]),
    ("SCMP_ARCH_LOONGARCH64", &[]),
];

const ALLOW: &str = "SCMP_ACT_ALLOW";
const ERRNO: &str = "SCMP_ACT_ERRNO";

/// The profile.
pub(crate) fn profile() -> Profile {
    let mut rules = vec![allow(ALLOWED)];
    rules.extend(socket_rules());
    rules.extend(
        PERSONAS
            .iter()
            .map(|p| with_arg(allow(&["personality"]), 0, *p, "SCMP_CMP_EQ")),
    );
    rules.push(Rule {
        includes: Condition {
            min_kernel: "4.8".into(),
            ..Default::default()
        },
        ..allow(TRACING)
    });
    rules.extend(BY_ARCH.iter().map(|(arch, names)| Rule {
        includes: Condition {
            arches: vec![arch.to_string()],
            ..Default::default()
        },
        ..allow(names)
    }));
    rules.extend(BY_CAP.iter().map(|(cap, names)| Rule {
        includes: Condition {
            caps: vec![cap.to_string()],
            ..Default::default()
        },
        ..allow(names)
    }));
    rules.extend(without_sys_admin());
    Profile {
        default_action: ERRNO.into(),
        arch_map: ARCH_MAP
            .iter()
            .map(|(arch, subs)| ArchMap {
                architecture: arch.to_string(),
                sub_architectures: subs.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
        syscalls: rules,
        ..Default::default()
    }
}

/// Three single-comparison rules (below AF_ALG, between the two, above AF_VSOCK); anything else
/// falls through to the default action.
fn socket_rules() -> [Rule; 3] {
    [
        with_arg(allow(&["socket"]), 0, AF_ALG, "SCMP_CMP_LT"),
        with_arg(allow(&["socket"]), 0, AF_ALG + 1, "SCMP_CMP_EQ"),
        with_arg(allow(&["socket"]), 0, AF_VSOCK, "SCMP_CMP_GT"),
    ]
}

/// Without CAP_SYS_ADMIN: `clone` only without namespace flags (s390 swaps the first two clone
/// arguments), and `clone3`, whose flags sit in memory seccomp cannot read, fails with ENOSYS.
fn without_sys_admin() -> Vec<Rule> {
    let not_admin = |includes: Condition| Rule {
        includes,
        excludes: Condition {
            caps: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        },
        ..allow(&["clone"])
    };
    let s390 = || vec!["s390".to_string(), "s390x".to_string()];
    let mut clone_s390 = not_admin(Condition {
        arches: s390(),
        ..Default::default()
    });
    clone_s390.args = vec![masked_zero(1)];
    let mut clone = not_admin(Condition::default());
    clone.excludes.arches = s390();
    clone.args = vec![masked_zero(0)];
    let clone3 = Rule {
        action: ERRNO.into(),
        errno_ret: Some(libc::ENOSYS as u32),
        ..not_admin(Condition::default())
    };
    vec![
        clone,
        clone_s390,
        Rule {
            names: vec!["clone3".into()],
            ..clone3
        },
    ]
}

/// `arg[index] & namespace flags == 0`.
fn masked_zero(index: u32) -> RuleArg {
    RuleArg {
        index,
        value: CLONE_NAMESPACE_FLAGS,
        value_two: 0,
        op: "SCMP_CMP_MASKED_EQ".into(),
    }
}

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|n| n.to_string()).collect(),
        action: ALLOW.into(),
        ..Default::default()
    }
}

fn with_arg(mut rule: Rule, index: u32, value: u64, op: &str) -> Rule {
    rule.args = vec![RuleArg {
        index,
        value,
        value_two: 0,
        op: op.into(),
    }];
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duplicate_names_in_the_allow_list() {
        let mut names = ALLOWED.to_vec();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        // Everything gated elsewhere stays out of the unconditional list.
        for gated in [
            "socket",
            "personality",
            "clone",
            "clone3",
            "ptrace",
            "mount",
            "unshare",
            "reboot",
        ] {
            assert!(!ALLOWED.contains(&gated), "{gated}");
        }
    }

    #[test]
    fn every_argument_rule_compares_one_argument() {
        for rule in profile().syscalls {
            assert!(rule.args.len() <= 1, "{:?}", rule.names);
        }
    }
}
