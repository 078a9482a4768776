//! Test harness: a busybox rootfs, a realistic OCI bundle, a cgroup under the test's own, and a
//! monitor started the way the daemon starts it. Everything a test creates is removed by
//! `Harness`'s Drop, even when the test fails.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use longshore_monitor_client::{
    ExecutorConfig, ExitRecord, FdStream, Monitor, MonitorClient, MonitorCommand, MonitorConfig,
    MonitorError, Started,
};
use longshore_testkit::cgroup::TestCgroupRoot;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

pub const RUNC: &str = "/usr/sbin/runc";
const BUSYBOX: &str = "/bin/busybox";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
static SUBREAPER: Once = Once::new();

/// Which executor a test runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Runc,
}

/// Options for the bundle's config.json.
#[derive(Debug, Clone, Default)]
pub struct SpecOpts {
    pub tty: bool,
    /// Join this pid namespace instead of creating one (a pod's shared pid namespace).
    pub pid_ns: Option<PathBuf>,
    pub memory_limit: Option<i64>,
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: String,
    pub stream: String,
    pub tag: String,
    pub content: String,
}

pub fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            LogLine {
                time: next(),
                stream: next(),
                tag: next(),
                content: next(),
            }
        })
        .collect()
}

/// Makes the test process a child subreaper, so detached monitors become its children and
/// the harness can reap them (this host's init does not).
fn become_subreaper() {
    SUBREAPER.call_once(|| {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and no pointers.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

fn rand_hex() -> String {
    longshore_testkit::random_suffix()
}

/// A cgroup `P/longshore-test-<rand>` in every hierarchy, where P is this process's deepest
/// own cgroup path, so one absolute cgroupsPath works in every v1 controller.
pub struct TestCgroup {
    root: TestCgroupRoot,
}

impl TestCgroup {
    fn new() -> Self {
        TestCgroup {
            root: TestCgroupRoot::new("longshore-test"),
        }
    }

    /// The OCI cgroupsPath for container `id`.
    pub fn path_for(&self, id: &str) -> String {
        self.root.child_path(id)
    }

    /// v1 memory.oom_control of container `id`'s cgroup.
    pub fn memory_events(&self, id: &str) -> PathBuf {
        self.root
            .dir_in(&Path::new(CGROUP_ROOT).join("memory"))
            .join(id)
            .join("memory.oom_control")
    }
}

/// One container under test: its bundle, state dir, log, cgroup, and cleanup.
pub struct Harness {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub runc_root: PathBuf,
    pub cgroup: TestCgroup,
    pub started: Option<Started>,
    holders: Vec<Child>,
}

impl Harness {
    pub fn new(kind: Kind) -> Self {
        become_subreaper();
        let dir = tempfile::Builder::new()
            .prefix("lsmon")
            .tempdir()
            .expect("tempdir");
        let id = format!("t{}", rand_hex());
        let bundle = dir.path().join("bundle");
        let state_dir = dir.path().join("state");
        let runc_root = dir.path().join("runc");
        fs::create_dir_all(&bundle).expect("bundle dir");
        build_rootfs(&bundle.join("rootfs"));
        Harness {
            kind,
            log_path: dir.path().join("container.log"),
            dir,
            id,
            bundle,
            state_dir,
            runc_root,
            cgroup: TestCgroup::new(),
            started: None,
            holders: Vec::new(),
        }
    }

    /// A monitor config for this container, run from this crate's `longshore-monitor` binary.
    pub fn config(&self) -> MonitorConfig {
        let mut cfg = MonitorConfig::new(&self.id, &self.bundle, &self.state_dir);
        cfg.log_path = Some(self.log_path.clone());
        cfg.executor = match self.kind {
            Kind::Embedded => ExecutorConfig::Embedded,
            Kind::Runc => ExecutorConfig::External {
                binary: PathBuf::from(RUNC),
                root: self.runc_root.clone(),
            },
        };
        cfg.command = MonitorCommand {
            program: PathBuf::from(env!("CARGO_BIN_EXE_longshore-monitor")),
            args: Vec::new(),
        };
        cfg
    }

    /// Writes config.json for `args`.
    pub fn write_spec(&self, args: &[&str], opts: &SpecOpts) {
        let spec = spec(args, opts, &self.cgroup.path_for(&self.id), &self.id);
        let text = serde_json::to_vec_pretty(&spec).expect("spec json");
        fs::write(self.bundle.join("config.json"), text).expect("write config.json");
    }

    /// Starts the monitor and remembers its pids for cleanup.
    pub async fn spawn(&mut self, cfg: &MonitorConfig) -> Result<Started, MonitorError> {
        let started = Monitor::spawn(cfg).await?;
        self.started = Some(started);
        Ok(started)
    }

    /// Starts a process holding a fresh pid namespace (like a pod's shared one) and returns
    /// the path to join it.
    pub fn pid_namespace_holder(&mut self) -> PathBuf {
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", BUSYBOX, "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let pid = child.id();
        self.holders.push(child);
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = fs::read_to_string(&children).unwrap_or_default();
            if let Some(inner) = text.split_whitespace().next() {
                return PathBuf::from(format!("/proc/{inner}/ns/pid"));
            }
            assert!(
                Instant::now() < deadline,
                "pid namespace holder did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_lines(&self) -> Vec<LogLine> {
        parse_log(&self.log_text())
    }

    /// Waits until the log file at `path` contains `needle`.
    pub async fn wait_for_log_at(&self, path: &Path, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(path).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "log {} never contained {needle:?}; it has:\n{text}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_at(&self.log_path.clone(), needle).await
    }

    pub fn monitor_pid(&self) -> Pid {
        Pid::from_raw(self.started.expect("monitor started").monitor_pid)
    }

    /// Waits (without any client) until the monitor process has exited, and reaps it.
    pub async fn wait_monitor_exit(&self) {
        let pid = self.monitor_pid();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(WaitStatus::Exited(_, code)) => {
                    assert_eq!(
                        code,
                        0,
                        "monitor exit code; its log:\n{}",
                        self.monitor_log()
                    );
                    return;
                }
                Ok(other) => panic!("monitor ended with {other:?}"),
                Err(e) => panic!("waitpid(monitor): {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "monitor did not exit; its log:\n{}",
                self.monitor_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn monitor_log(&self) -> String {
        fs::read_to_string(self.state_dir.join("monitor.log")).unwrap_or_default()
    }

    /// The monitor's resident set, from /proc/<pid>/status.
    pub fn monitor_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.monitor_pid()))
            .expect("monitor status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The memory lines of /proc/<pid>/status (VmRSS and its anon/file/shmem parts).
    pub fn monitor_memory(&self) -> String {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.monitor_pid())).unwrap_or_default();
        status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("Rss"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Pss and private memory from /proc/<pid>/smaps_rollup.
    pub fn monitor_smaps_rollup(&self) -> String {
        let text = fs::read_to_string(format!("/proc/{}/smaps_rollup", self.monitor_pid()))
            .unwrap_or_default();
        text.lines()
            .filter(|l| {
                ["Pss:", "Private_Clean:", "Private_Dirty:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn cleanup_processes(&mut self) {
        if let Some(started) = self.started {
            let monitor = Pid::from_raw(started.monitor_pid);
            let container = Pid::from_raw(started.pid);
            // Only while it is still the monitor's child (so the pid cannot be someone else's).
            if parent_of(container) == Some(monitor) {
                let _ = kill(container, Signal::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match waitpid(monitor, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(WaitStatus::StillAlive) => {
                        let _ = kill(monitor, Signal::SIGKILL);
                        let _ = waitpid(monitor, None);
                        break;
                    }
                    _ => break,
                }
            }
        }
        reap_strays(&self.state_dir);
        for mut holder in self.holders.drain(..) {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        if self.kind == Kind::Runc && self.runc_root.exists() {
            let _ = Command::new(RUNC)
                .arg("--root")
                .arg(&self.runc_root)
                .args(["delete", "--force", &self.id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cleanup_processes();
    }
}

fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    fields.next()?.parse().ok().map(Pid::from_raw)
}

/// Reaps monitors of this harness that never reported a pid (failed starts): children of this
/// process whose command line names our state dir.
fn reap_strays(state_dir: &Path) {
    let me = Pid::this();
    let needle = state_dir.as_os_str().as_encoded_bytes().to_vec();
    let deadline = Instant::now() + Duration::from_secs(10);
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let pid = Pid::from_raw(pid);
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid != Some(me.as_raw()) {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
        {
            continue;
        }
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(WaitStatus::StillAlive) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    break;
                }
                _ => break,
            }
        }
    }
}

/// A rootfs of Debian's static busybox and its applet links.
fn build_rootfs(root: &Path) {
    let bin = root.join("bin");
    fs::create_dir_all(&bin).expect("rootfs/bin");
    if fs::hard_link(BUSYBOX, bin.join("busybox")).is_err() {
        fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
    }
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    for d in ["proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    fs::write(root.join("etc/group"), "root:x:0:\ntty:x:5:\n").expect("group");
}

/// The capabilities container runtimes grant by default.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A minimal but realistic OCI runtime spec (what `runc spec` and CRI runtimes produce).
fn spec(args: &[&str], opts: &SpecOpts, cgroups_path: &str, hostname: &str) -> Value {
    let mut namespaces = vec![
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "network"}),
    ];
    namespaces.push(match &opts.pid_ns {
        Some(path) => json!({"type": "pid", "path": path}),
        None => json!({"type": "pid"}),
    });
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(limit) = opts.memory_limit {
        resources["memory"] = json!({"limit": limit});
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/root", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": hostname.chars().take(63).collect::<String>(),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Reads a stream to its end (bounded by a timeout).
pub async fn read_all(stream: &mut FdStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("stream did not end")
        .expect("read stream");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until the text read so far contains `needle`.
pub async fn read_until(stream: &mut FdStream, needle: &str) -> String {
    let mut out = Vec::new();
    let fut = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read stream");
            assert!(
                n > 0,
                "stream ended before {needle:?}: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&out).contains(needle) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("never read {needle:?}"));
    String::from_utf8_lossy(&out).into_owned()
}

/// `wait_exit` bounded by a timeout, so a broken monitor fails the test instead of hanging it.
pub async fn wait_exit(client: &MonitorClient) -> ExitRecord {
    tokio::time::timeout(Duration::from_secs(20), client.wait_exit())
        .await
        .expect("container did not exit")
        .expect("wait_exit")
}
