//! Shared test fixtures: a private cgroup under this process's own cgroup, and child processes
//! that wait to be moved into a cgroup before they start their work.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use longshore_cgroups::{Cgroup, CgroupPath, Hierarchy};

/// Directories the first live `TestRoot` had to create above the test cgroups (in hierarchies
/// where our own cgroup is higher up), with the number of live `TestRoot`s. The last one to go
/// removes them.
static BASE: Mutex<Base> = Mutex::new(Base {
    users: 0,
    created: Vec::new(),
    subtree_control: Vec::new(),
});

/// What the first `TestRoot` found above the test cgroups, to put back after the last one.
struct Base {
    users: usize,
    /// Directories that did not exist, top first.
    created: Vec<PathBuf>,
    /// `cgroup.subtree_control` of existing v2 ancestors (creation may enable controllers).
    subtree_control: Vec<(PathBuf, String)>,
}

const SUBTREE_CONTROL: &str = "cgroup.subtree_control";

/// A uniquely named cgroup `<self_root>/longshore-test-<unique>` for one test. Dropping it kills
/// whatever is left inside and deletes it, with everything below it.
pub struct TestRoot {
    pub hierarchy: Hierarchy,
    pub path: CgroupPath,
    pub cgroup: Cgroup,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        let hierarchy = Hierarchy::detect().expect("detect cgroup hierarchy");
        let self_root = hierarchy.self_root().expect("own cgroup root");
        let path = self_root
            .child(&format!("longshore-test-{}", unique()))
            .unwrap();
        {
            let mut base = BASE.lock().unwrap_or_else(|e| e.into_inner());
            if base.users == 0 {
                base.created = missing_dirs(&hierarchy, &self_root);
                base.subtree_control = subtree_controls(&hierarchy, &self_root);
            }
            base.users += 1;
        }
        let cgroup = Cgroup::create(&hierarchy, &path).expect("create test root cgroup");
        TestRoot {
            hierarchy,
            path,
            cgroup,
        }
    }

    /// Create a cgroup at `relative` (e.g. `/kubepods/pod1/ctr`) below the test root.
    pub fn create(&self, relative: &str) -> Cgroup {
        let path = self.path.join(&CgroupPath::new(relative).unwrap());
        Cgroup::create(&self.hierarchy, &path).expect("create cgroup")
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        if let Err(e) = self.cgroup.kill_all() {
            eprintln!("cleanup: kill_all {}: {e}", self.path);
        }
        if let Err(e) = self.cgroup.delete() {
            eprintln!("cleanup: delete {}: {e}", self.path);
        }
        let mut base = BASE.lock().unwrap_or_else(|e| e.into_inner());
        base.users -= 1;
        if base.users == 0 {
            for dir in base.created.drain(..).rev() {
                let _ = std::fs::remove_dir(&dir);
            }
            for (file, before) in base.subtree_control.drain(..).rev() {
                restore_subtree_control(&file, &before);
            }
        }
    }
}

/// Directories from the hierarchy roots down to `path` that do not exist yet, top first.
fn missing_dirs(hierarchy: &Hierarchy, path: &CgroupPath) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in path.lineage() {
        let cgroup = Cgroup::open(hierarchy, &p).unwrap();
        out.extend(cgroup.dirs().into_iter().filter(|d| !d.is_dir()));
    }
    out
}

/// The `cgroup.subtree_control` files of existing cgroups from the roots down to `path`.
fn subtree_controls(hierarchy: &Hierarchy, path: &CgroupPath) -> Vec<(PathBuf, String)> {
    let mut lineage = vec![CgroupPath::root()];
    lineage.extend(path.lineage());
    let mut out = Vec::new();
    for p in lineage {
        for dir in Cgroup::open(hierarchy, &p).unwrap().dirs() {
            let file = dir.join(SUBTREE_CONTROL);
            if let Ok(text) = std::fs::read_to_string(&file) {
                out.push((file, text));
            }
        }
    }
    out
}

/// Disable the controllers enabled since `before` was read.
fn restore_subtree_control(file: &Path, before: &str) {
    let Ok(now) = std::fs::read_to_string(file) else {
        return;
    };
    let added: Vec<String> = now
        .split_whitespace()
        .filter(|c| !before.split_whitespace().any(|b| b == *c))
        .map(|c| format!("-{c}"))
        .collect();
    if !added.is_empty() {
        if let Err(e) = std::fs::write(file, added.join(" ")) {
            eprintln!("cleanup: restore {}: {e}", file.display());
        }
    }
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = {
        static COUNTER: Mutex<u32> = Mutex::new(0);
        let mut c = COUNTER.lock().unwrap_or_else(|e| e.into_inner());
        *c += 1;
        *c
    };
    format!("{:x}-{n}-{nanos:x}", std::process::id())
}

/// The file `name` of `cgroup`, in whichever hierarchy has it.
pub fn file(cgroup: &Cgroup, name: &str) -> PathBuf {
    cgroup
        .dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} in any directory of {}", cgroup.path()))
}

/// The trimmed content of `cgroup`'s file `name`.
pub fn read(cgroup: &Cgroup, name: &str) -> String {
    let path = file(cgroup, name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A `sh` child that waits for a line on stdin before it runs `script`, so it can be moved
/// into a cgroup first. Killed and reaped on drop.
pub struct Child {
    child: std::process::Child,
    out: Option<BufReader<std::process::ChildStdout>>,
}

impl Child {
    pub fn spawn(script: &str) -> Child {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let out = child.stdout.take().map(BufReader::new);
        Child { child, out }
    }

    /// A child that sleeps once started.
    pub fn sleeper() -> Child {
        Child::spawn("exec sleep 600")
    }

    /// A child that burns CPU once started.
    pub fn burner() -> Child {
        Child::spawn("while :; do :; done")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Move into `cgroup` and start.
    pub fn start_in(&mut self, cgroup: &Cgroup) {
        cgroup.add_process(self.pid()).expect("add_process");
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("start child");
        stdin.flush().unwrap();
    }

    /// Wait for the script to print a line, and return it.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.out
            .as_mut()
            .expect("stdout")
            .read_line(&mut line)
            .expect("read child stdout");
        line.trim().to_string()
    }

    /// Wait for the child to end (up to `timeout`) and reap it.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit",
                self.pid()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the child ended by SIGKILL (waiting up to `timeout`).
    pub fn killed_by_sigkill(&mut self, timeout: Duration) -> bool {
        self.wait(timeout).signal() == Some(libc::SIGKILL)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(unused_imports)] // not every test binary polls
pub use longshore_testkit::eventually;
