//! Running one plugin binary: finding it, the `CNI_*` environment, stdin, and reading its
//! result or its JSON error.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{Error, PluginFailure, Result};

/// The plugin verbs we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Attach.
    Add,
    /// Detach.
    Del,
    /// Verify an attachment.
    Check,
}

impl Verb {
    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "ADD",
            Verb::Del => "DEL",
            Verb::Check => "CHECK",
        }
    }
}

/// Where plugins are found.
#[derive(Debug, Clone)]
pub struct PluginDirs {
    dirs: Vec<PathBuf>,
    /// `CNI_PATH`: the same directories, `:`-joined, for plugins that call others (IPAM).
    cni_path: String,
}

impl PluginDirs {
    /// Searches `dirs` in order.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        let cni_path = dirs
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":");
        PluginDirs { dirs, cni_path }
    }

    /// The first `<dir>/<kind>` that is a file.
    pub fn find(&self, kind: &str) -> Result<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join(kind))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::PluginNotFound {
                plugin: kind.into(),
                dirs: self.dirs.clone(),
            })
    }
}

/// One call's environment: who, where, and with which interface.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The verb.
    pub verb: Verb,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`; empty when the namespace is gone (DEL only).
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub args: &'a str,
    /// The network, for errors.
    pub network: &'a str,
}

/// The error object a failing plugin prints on stdout.
#[derive(Deserialize)]
struct PluginError {
    #[serde(default)]
    code: Option<u64>,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// Runs plugin `kind` with `stdin`; returns its stdout when it succeeded. The child is
/// killed if this future is dropped, so a caller's timeout leaves no stray plugin.
pub async fn run(dirs: &PluginDirs, kind: &str, call: &Call<'_>, stdin: &[u8]) -> Result<Vec<u8>> {
    let binary = dirs.find(kind)?;
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .env("CNI_COMMAND", call.verb.as_str())
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", &dirs.cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| spawn_error(&binary, source))?;
    let pipe = child.stdin.take();
    let feed = async move {
        if let Some(mut pipe) = pipe {
            // A plugin may exit without reading stdin; a broken pipe then is not our error,
            // its exit status and output tell what happened.
            if let Err(e) = pipe.write_all(stdin).await {
                tracing::debug!(plugin = kind, error = %e, "plugin did not read its config");
            }
        }
    };
    // Feed stdin while draining stdout, so a large config cannot deadlock on full pipes.
    let ((), out) = tokio::join!(feed, child.wait_with_output());
    let out = out.map_err(|source| spawn_error(&binary, source))?;
    tracing::debug!(plugin = kind, verb = call.verb.as_str(), network = call.network,
        container = call.container_id, status = %out.status,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "ran CNI plugin");
    if out.status.success() {
        if !out.stderr.is_empty() {
            tracing::debug!(plugin = kind, stderr = %String::from_utf8_lossy(&out.stderr),
                "CNI plugin stderr");
        }
        return Ok(out.stdout);
    }
    Err(plugin_error(
        kind,
        call,
        &out.stdout,
        &out.stderr,
        out.status,
    ))
}

fn spawn_error(binary: &Path, source: std::io::Error) -> Error {
    Error::Spawn {
        path: binary.to_path_buf(),
        source,
    }
}

/// Builds the error from the plugin's JSON error object, or from its raw output when it
/// printed none (a crash, a shell-script plugin).
fn plugin_error(
    kind: &str,
    call: &Call<'_>,
    stdout: &[u8],
    stderr: &[u8],
    status: std::process::ExitStatus,
) -> Error {
    let stderr = String::from_utf8_lossy(stderr).trim().to_string();
    let (code, msg, details) = match serde_json::from_slice::<PluginError>(stdout) {
        Ok(e) if !e.msg.is_empty() => (e.code, e.msg, e.details),
        _ => {
            let out = String::from_utf8_lossy(stdout).trim().to_string();
            let msg = if out.is_empty() {
                format!("exited with {status} and no error message")
            } else {
                out
            };
            (None, msg, String::new())
        }
    };
    Error::Plugin(Box::new(PluginFailure {
        network: call.network.into(),
        plugin: kind.into(),
        command: call.verb.as_str(),
        code,
        msg,
        details,
        stderr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call() -> Call<'static> {
        Call {
            verb: Verb::Add,
            container_id: "c1",
            netns: "/run/netns/x",
            ifname: "eth0",
            args: "IgnoreUnknown=1",
            network: "net",
        }
    }

    #[tokio::test]
    async fn passes_the_environment_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let body = r#"printf '%s|%s|%s|%s|%s|%s|' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"; cat"#;
        script(dir.path(), "echoenv", body);
        let dirs = PluginDirs::new(vec![dir.path().join("none"), dir.path().to_path_buf()]);
        let out = run(&dirs, "echoenv", &call(), b"{\"x\":1}").await.unwrap();
        let want = format!(
            "ADD|c1|/run/netns/x|eth0|IgnoreUnknown=1|{}:{}|{{\"x\":1}}",
            dir.path().join("none").display(),
            dir.path().display()
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[tokio::test]
    async fn failure_carries_the_json_msg_details_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "fail",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"boom","details":"more"}'; echo oops >&2; exit 1"#,
        );
        script(dir.path(), "crash", "echo 'panic: nil map'; exit 2");
        let dirs = PluginDirs::new(vec![dir.path().to_path_buf()]);
        match run(&dirs, "fail", &call(), b"{}").await.unwrap_err() {
            Error::Plugin(f) => {
                assert_eq!(
                    (f.code, f.msg.as_str(), f.details.as_str()),
                    (Some(11), "boom", "more")
                );
                assert_eq!((f.stderr.as_str(), f.command), ("oops", "ADD"));
                assert_eq!(
                    Error::Plugin(f).to_string(),
                    "CNI plugin \"fail\" failed (ADD) on network \"net\": boom (more); stderr: oops"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = run(&dirs, "crash", &call(), b"{}").await.unwrap_err();
        assert!(err.to_string().contains("panic: nil map"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_plugin_is_named() {
        let dirs = PluginDirs::new(vec![PathBuf::from("/nonexistent")]);
        let err = run(&dirs, "bridge", &call(), b"{}").await.unwrap_err();
        assert!(matches!(err, Error::PluginNotFound { ref plugin, .. } if plugin == "bridge"));
    }
}
