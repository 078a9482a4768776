//! A pod's user namespace (`hostUsers: false`), with the pod's network, IPC and UTS namespaces
//! owned by it, all pinned like the others.
//!
//! A multi-threaded process cannot unshare a user namespace, so the daemon runs its own binary
//! as `longshore pod-userns` (fresh and single-threaded), which unshares one and waits; the
//! daemon writes the id maps kubelet allocated into `/proc/<pid>/uid_map` and `gid_map`; the
//! helper then becomes root inside, unshares the other namespaces (so they belong to the user
//! namespace, which lets containers mount sysfs and set namespaced sysctls), sets the hostname,
//! brings `lo` up and writes the sysctls; the daemon bind-mounts `/proc/<pid>/ns/{user,net,...}`
//! and lets the helper go. Containers join the pinned user namespace first, then the others.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use crate::pin::{
    PinRequest, PinnedNamespaces, bind_namespace, check_sysctls, setup_namespaces, unpin,
};
use crate::{NamespaceError, NamespaceKind};

/// One line of a uid or gid map: `size` ids from `container_id` inside are `host_id` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the namespace.
    pub container_id: u32,
    /// First id outside (on the host).
    pub host_id: u32,
    /// How many ids.
    pub size: u32,
}

impl IdMap {
    /// The host id of `id` inside, if the map covers it.
    pub fn to_host(maps: &[IdMap], id: u32) -> Option<u32> {
        maps.iter().find_map(|m| {
            let offset = id.checked_sub(m.container_id)?;
            (offset < m.size).then(|| m.host_id + offset)
        })
    }

    /// The text `/proc/<pid>/uid_map` takes: one `inside outside size` line per map.
    pub fn proc_text(maps: &[IdMap]) -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect()
    }
}

/// The user namespace and the id maps of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespaceRequest {
    /// uid maps, as kubelet allocated them.
    pub uids: Vec<IdMap>,
    /// gid maps.
    pub gids: Vec<IdMap>,
}

/// Makes a user namespace with `user`'s maps and, owned by it, the namespaces `req` asks for;
/// pins them all under `dir` (`dir/user`, `dir/net`, ...). `exe` is the daemon's own binary,
/// run as `exe pod-userns`. On failure nothing is left pinned and the helper is gone.
pub fn pin_with_user_namespace(
    exe: &Path,
    dir: &Path,
    req: &PinRequest,
    user: &UserNamespaceRequest,
) -> Result<PinnedNamespaces, NamespaceError> {
    check_sysctls(req)?;
    if user.uids.is_empty() || user.gids.is_empty() {
        return Err(helper("a user namespace needs uid and gid maps".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| crate::pin::path_err("create", dir, e))?;
    let mut child = spawn_helper(exe, dir, req)?;
    let pinned = drive_helper(&mut child, dir, req, user);
    let _ = child.kill();
    let _ = child.wait();
    if pinned.is_err() {
        let _ = unpin(dir);
    }
    pinned
}

fn spawn_helper(exe: &Path, dir: &Path, req: &PinRequest) -> Result<Child, NamespaceError> {
    let mut cmd = Command::new(exe);
    cmd.arg("pod-userns").arg(dir);
    for (wanted, flag) in [(req.net, "--net"), (req.ipc, "--ipc"), (req.uts, "--uts")] {
        if wanted {
            cmd.arg(flag);
        }
    }
    if let Some(h) = &req.hostname {
        cmd.arg(format!("--hostname={h}"));
    }
    for (k, v) in &req.sysctls {
        cmd.arg(format!("--sysctl={k}={v}"));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| helper(format!("cannot run {} pod-userns: {e}", exe.display())))
}

fn drive_helper(
    child: &mut Child,
    dir: &Path,
    req: &PinRequest,
    user: &UserNamespaceRequest,
) -> Result<PinnedNamespaces, NamespaceError> {
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(helper("no pipes to the helper".into()));
    };
    let mut lines = BufReader::new(stdout);
    expect_line(&mut lines, child, "unshared")?;
    let pid = child.id();
    // gid first: writing uid_map does not need it, but a later setgroups check reads both.
    write_map(pid, "gid_map", &user.gids)?;
    write_map(pid, "uid_map", &user.uids)?;
    tell(&mut stdin, "mapped")?;
    expect_line(&mut lines, child, "ready")?;
    let pinned = pin_from(pid, dir, req)?;
    tell(&mut stdin, "done")?;
    Ok(pinned)
}

fn write_map(pid: u32, file: &str, maps: &[IdMap]) -> Result<(), NamespaceError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, IdMap::proc_text(maps))
        .map_err(|e| crate::pin::path_err("write", &path, e))
}

fn tell(stdin: &mut ChildStdin, word: &str) -> Result<(), NamespaceError> {
    writeln!(stdin, "{word}")
        .and_then(|_| stdin.flush())
        .map_err(|e| helper(format!("telling the helper {word:?}: {e}")))
}

/// Reads one line from the helper; anything else (or its end) is its failure, with its stderr.
fn expect_line(
    lines: &mut BufReader<ChildStdout>,
    child: &mut Child,
    want: &str,
) -> Result<(), NamespaceError> {
    let mut line = String::new();
    let read = lines.read_line(&mut line);
    if matches!(read, Ok(n) if n > 0) && line.trim() == want {
        return Ok(());
    }
    let _ = child.kill();
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    Err(helper(format!(
        "expected {want:?}, got {:?}: {}",
        line.trim(),
        err.trim()
    )))
}

/// Bind-mounts the helper's namespaces to their pin files.
fn pin_from(pid: u32, dir: &Path, req: &PinRequest) -> Result<PinnedNamespaces, NamespaceError> {
    let mut pinned = PinnedNamespaces {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let kinds = [
        (true, NamespaceKind::User),
        (req.net, NamespaceKind::Net),
        (req.ipc, NamespaceKind::Ipc),
        (req.uts, NamespaceKind::Uts),
    ];
    for (wanted, kind) in kinds {
        if !wanted {
            continue;
        }
        let file = dir.join(kind.file_name());
        std::fs::File::create(&file).map_err(|e| crate::pin::path_err("create", &file, e))?;
        let source = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.file_name()));
        bind_namespace(&source, &file)?;
        match kind {
            NamespaceKind::User => pinned.user = Some(file),
            NamespaceKind::Net => pinned.net = Some(file),
            NamespaceKind::Ipc => pinned.ipc = Some(file),
            NamespaceKind::Uts => pinned.uts = Some(file),
            NamespaceKind::Pid => {}
        }
    }
    Ok(pinned)
}

fn helper(reason: String) -> NamespaceError {
    NamespaceError::PodInit(format!("user namespace helper: {reason}"))
}

/// The body of `longshore pod-userns <dir> [--net] [--ipc] [--uts] [--hostname=H]
/// [--sysctl=K=V]...`; see the module comment. Returns the exit code.
pub fn pod_userns_main(args: &[String]) -> i32 {
    match helper_main(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pod-userns: {e}");
            1
        }
    }
}

fn helper_main(args: &[String]) -> Result<(), String> {
    let req = parse_args(args)?;
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    say(&mut out, "unshared")?;
    wait_for(&stdin, "mapped")?;
    // Root inside: the maps now say who that is; the namespaces made next are owned by this
    // user namespace, and their /proc/sys files by its root.
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| format!("setresgid(0): {e}"))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| format!("setresuid(0): {e}"))?;
    setup_namespaces(&req.kinds(), &req).map_err(|e| e.to_string())?;
    say(&mut out, "ready")?;
    // The daemon pins /proc/<pid>/ns/* now; the helper must live until it has.
    wait_for(&stdin, "done")
}

fn parse_args(args: &[String]) -> Result<PinRequest, String> {
    let mut req = PinRequest::default();
    // args[0] is the pod's folder: only there so that `ps` shows which pod this is.
    for arg in args.iter().skip(1) {
        match arg.as_str() {
            "--net" => req.net = true,
            "--ipc" => req.ipc = true,
            "--uts" => req.uts = true,
            a => {
                if let Some(h) = a.strip_prefix("--hostname=") {
                    req.hostname = Some(h.to_string());
                } else if let Some((k, v)) = a
                    .strip_prefix("--sysctl=")
                    .and_then(|kv| kv.split_once('='))
                {
                    req.sysctls.push((k.to_string(), v.to_string()));
                } else {
                    return Err(format!("unknown argument {a:?}"));
                }
            }
        }
    }
    Ok(req)
}

fn say(out: &mut std::io::Stdout, word: &str) -> Result<(), String> {
    writeln!(out, "{word}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("writing {word:?}: {e}"))
}

fn wait_for(stdin: &std::io::Stdin, word: &str) -> Result<(), String> {
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading: {e}"))?;
    if line.trim() == word {
        Ok(())
    } else {
        Err(format!("expected {word:?} from the daemon, got {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_translate_and_print() {
        let maps = [
            IdMap {
                container_id: 0,
                host_id: 65536,
                size: 65536,
            },
            IdMap {
                container_id: 70000,
                host_id: 10,
                size: 1,
            },
        ];
        assert_eq!(IdMap::to_host(&maps, 0), Some(65536));
        assert_eq!(IdMap::to_host(&maps, 65535), Some(131071));
        assert_eq!(IdMap::to_host(&maps, 65536), None);
        assert_eq!(IdMap::to_host(&maps, 70000), Some(10));
        assert_eq!(IdMap::proc_text(&maps), "0 65536 65536\n70000 10 1\n");
    }

    #[test]
    fn helper_arguments_round_trip() {
        let args: Vec<String> = ["/d", "--net", "--uts", "--hostname=h", "--sysctl=a.b=1=2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let req = parse_args(&args).unwrap();
        assert!(req.net && req.uts && !req.ipc);
        assert_eq!(req.hostname.as_deref(), Some("h"));
        assert_eq!(req.sysctls, vec![("a.b".to_string(), "1=2".to_string())]);
        assert!(parse_args(&["/d".into(), "--bogus".into()]).is_err());
    }
}
