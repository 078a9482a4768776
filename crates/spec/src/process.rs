//! The process to run: arguments merged with the image's entrypoint and cmd, the environment,
//! the working directory, and the signal that stops it.

use std::path::PathBuf;

use crate::api::{ContainerConfig, Signal};

use super::{ImageConfigView, SpecError};

/// The `PATH` a container gets when neither the image nor the request sets one.
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Signal number of SIGTERM, the stop signal when nothing else is asked for.
const SIGTERM: i32 = libc::SIGTERM;
/// glibc's SIGRTMIN (the kernel's 32 and 33 are reserved by the C library); Go and moby agree.
const SIGRTMIN: i32 = 34;
/// The last real-time signal on Linux.
const SIGRTMAX: i32 = 64;

/// The command line: containerd's (and Docker's) merge. Without a command the image's
/// entrypoint is used, and without args the image's cmd (an entrypoint of exactly `[""]` means
/// none); args alone follow the image's entrypoint.
pub(crate) fn args(
    config: &ContainerConfig,
    image: &ImageConfigView,
) -> Result<Vec<String>, SpecError> {
    let mut command = config.command.clone();
    let mut args = config.args.clone();
    if command.is_empty() {
        if args.is_empty() {
            args = image.cmd.clone();
        }
        if image.entrypoint != [""] {
            command = image.entrypoint.clone();
        }
    }
    command.extend(args);
    if command.is_empty() {
        return Err(SpecError::invalid(
            "command",
            "no command specified and the image has no entrypoint or cmd",
        ));
    }
    Ok(command)
}

/// The environment, built in containerd's order: the default `PATH`, `TERM=xterm` for a tty,
/// `HOSTNAME`, then the image's variables and the request's. A later value for a key replaces the
/// earlier one in place; an image entry without `=` removes the key, as in Docker.
pub(crate) fn env(
    config: &ContainerConfig,
    image: &ImageConfigView,
    hostname: &str,
) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_string()];
    if config.tty {
        env.push("TERM=xterm".to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    let overrides = image.env.iter().cloned().chain(
        config
            .envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value))),
    );
    for entry in overrides {
        set_env(&mut env, entry);
    }
    env
}

fn set_env(env: &mut Vec<String>, entry: String) {
    let (key, has_value) = match entry.split_once('=') {
        Some((k, _)) => (k.to_string(), true),
        None => (entry.clone(), false),
    };
    let same_key = |e: &String| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key;
    match (env.iter().position(same_key), has_value) {
        (Some(i), true) => env[i] = entry,
        (Some(i), false) => {
            env.remove(i);
        }
        (None, true) => env.push(entry),
        (None, false) => {}
    }
}

/// The working directory: the request's, else the image's, else `/`. Must be absolute.
pub(crate) fn cwd(config: &ContainerConfig, image: &ImageConfigView) -> Result<PathBuf, SpecError> {
    let (dir, field) = if !config.working_dir.is_empty() {
        (config.working_dir.as_str(), "working_dir")
    } else if !image.working_dir.is_empty() {
        (image.working_dir.as_str(), "image.working_dir")
    } else {
        ("/", "working_dir")
    };
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(
            field,
            format!("{dir:?} is not an absolute path"),
        ));
    }
    Ok(PathBuf::from(dir))
}

/// The signal StopContainer sends first: the request's (`stop_signal`, CRI 1.33+), else the
/// image's `STOPSIGNAL`, else SIGTERM. An image signal we cannot parse falls back to SIGTERM.
pub(crate) fn stop_signal(config: &ContainerConfig, image: &ImageConfigView) -> i32 {
    if let Some(sig) = Signal::try_from(config.stop_signal)
        .ok()
        .and_then(cri_signal)
    {
        return sig;
    }
    if image.stop_signal.is_empty() {
        return SIGTERM;
    }
    parse_signal(&image.stop_signal).unwrap_or_else(|| {
        tracing::warn!(signal = %image.stop_signal, "image STOPSIGNAL not understood, using SIGTERM");
        SIGTERM
    })
}

/// The number of a CRI `Signal`; `None` for `RUNTIME_DEFAULT`.
fn cri_signal(sig: Signal) -> Option<i32> {
    if sig == Signal::RuntimeDefault {
        return None;
    }
    parse_signal(sig.as_str_name())
}

/// Parses `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`, `RTMAX-2` and the CRI spellings
/// `SIGRTMINPLUS3` / `SIGRTMAXMINUS2`.
pub(crate) fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt_offset(rest, SIGRTMIN, 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt_offset(rest, SIGRTMAX, -1);
    }
    let n = match name {
        "ABRT" | "IOT" => libc::SIGABRT,
        "ALRM" => libc::SIGALRM,
        "BUS" => libc::SIGBUS,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "FPE" => libc::SIGFPE,
        "HUP" => libc::SIGHUP,
        "ILL" => libc::SIGILL,
        "INT" => libc::SIGINT,
        "IO" | "POLL" => libc::SIGIO,
        "KILL" => libc::SIGKILL,
        "PIPE" => libc::SIGPIPE,
        "PROF" => libc::SIGPROF,
        "PWR" => libc::SIGPWR,
        "QUIT" => libc::SIGQUIT,
        "SEGV" => libc::SIGSEGV,
        "STKFLT" => libc::SIGSTKFLT,
        "STOP" => libc::SIGSTOP,
        "SYS" => libc::SIGSYS,
        "TERM" => libc::SIGTERM,
        "TRAP" => libc::SIGTRAP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "VTALRM" => libc::SIGVTALRM,
        "WINCH" => libc::SIGWINCH,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        _ => return None,
    };
    Some(n)
}

/// `""` → base, `+3`/`PLUS3` and `-3`/`MINUS3` → base ± 3 (direction fixed by the base).
fn rt_offset(rest: &str, base: i32, direction: i32) -> Option<i32> {
    if rest.is_empty() {
        return Some(base);
    }
    let digits = match direction {
        1 => rest
            .strip_prefix('+')
            .or_else(|| rest.strip_prefix("PLUS"))?,
        _ => rest
            .strip_prefix('-')
            .or_else(|| rest.strip_prefix("MINUS"))?,
    };
    let n = base + direction * digits.parse::<i32>().ok()?;
    (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KeyValue;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfigView {
        ImageConfigView {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn config(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn args_merge_like_containerd() {
        let img = image(&["/entry"], &["default"]);
        assert_eq!(
            args(&config(&[], &[]), &img).unwrap(),
            ["/entry", "default"]
        );
        assert_eq!(args(&config(&[], &["x"]), &img).unwrap(), ["/entry", "x"]);
        assert_eq!(args(&config(&["sh"], &[]), &img).unwrap(), ["sh"]);
        assert_eq!(
            args(&config(&["sh"], &["-c", "id"]), &img).unwrap(),
            ["sh", "-c", "id"]
        );
        // An entrypoint of [""] is Docker's "reset entrypoint".
        assert_eq!(
            args(&config(&[], &[]), &image(&[""], &["top"])).unwrap(),
            ["top"]
        );
        assert_eq!(
            args(&config(&[], &[]), &image(&[], &["top"])).unwrap(),
            ["top"]
        );
        let err = args(&config(&[], &[]), &image(&[], &[])).unwrap_err();
        assert!(matches!(&err, SpecError::Invalid { field, .. } if field == "command"));
    }

    #[test]
    fn env_order_and_overrides() {
        let mut img = image(&[], &[]);
        img.env = vec![
            "PATH=/img/bin".into(),
            "A=1".into(),
            "B=2".into(),
            "TERM".into(),
        ];
        let mut cfg = config(&["x"], &[]);
        cfg.tty = true;
        cfg.envs = vec![
            KeyValue {
                key: "A".into(),
                value: b"from-request".to_vec(),
            },
            KeyValue {
                key: "C".into(),
                value: b"a=b".to_vec(),
            },
            KeyValue {
                key: "C".into(),
                value: b"last".to_vec(),
            },
        ];
        assert_eq!(
            env(&cfg, &img, "pod-host"),
            [
                "PATH=/img/bin",
                "HOSTNAME=pod-host",
                "A=from-request",
                "B=2",
                "C=last"
            ]
        );
        let plain = env(&config(&["x"], &[]), &image(&[], &[]), "h");
        assert_eq!(plain, [DEFAULT_PATH, "HOSTNAME=h"]);
    }

    #[test]
    fn cwd_choice() {
        let mut img = image(&[], &[]);
        assert_eq!(cwd(&config(&[], &[]), &img).unwrap(), PathBuf::from("/"));
        img.working_dir = "/srv".into();
        assert_eq!(cwd(&config(&[], &[]), &img).unwrap(), PathBuf::from("/srv"));
        let mut cfg = config(&[], &[]);
        cfg.working_dir = "/work".into();
        assert_eq!(cwd(&cfg, &img).unwrap(), PathBuf::from("/work"));
        cfg.working_dir = "relative".into();
        assert!(cwd(&cfg, &img).is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("quit"), Some(3));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(37));
        assert_eq!(parse_signal("RTMAX-1"), Some(63));
        assert_eq!(parse_signal("SIGRTMINPLUS15"), Some(49));
        assert_eq!(parse_signal("SIGRTMAXMINUS14"), Some(50));
        assert_eq!(parse_signal("SIGRTMAX"), Some(64));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("RTMIN+40"), None);

        let mut img = image(&[], &[]);
        let mut cfg = config(&[], &[]);
        assert_eq!(stop_signal(&cfg, &img), 15);
        img.stop_signal = "SIGQUIT".into();
        assert_eq!(stop_signal(&cfg, &img), 3);
        cfg.stop_signal = Signal::Sigusr1 as i32;
        assert_eq!(stop_signal(&cfg, &img), 10);
        cfg.stop_signal = Signal::Sigrtminplus1 as i32;
        assert_eq!(stop_signal(&cfg, &img), 35);
        cfg.stop_signal = 0;
        img.stop_signal = "garbage".into();
        assert_eq!(stop_signal(&cfg, &img), 15);
    }
}
