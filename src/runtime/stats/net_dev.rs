//! A pod's network interface counters, read inside its pinned network namespace.
//!
//! `/sys/class/net` shows the namespace of whoever mounted sysfs, and `/proc/self/net` the one
//! of the process's main thread, so neither works from the daemon. A short-lived thread joins
//! each pod's namespace in turn (`setns`) and reads `/proc/thread-self/net/dev`, which shows the
//! calling thread's namespace. The thread then exits, so no daemon thread is ever left in a
//! pod's namespace.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use super::convert::value;
use crate::api::{NetworkInterfaceUsage, NetworkUsage};

/// The calling thread's view of its network namespace's interfaces.
const THREAD_NET_DEV: &str = "/proc/thread-self/net/dev";
/// The loopback device, never reported.
const LOOPBACK: &str = "lo";
/// The interface kubelet (and CNI's convention) treats as the pod's own.
pub(crate) const DEFAULT_INTERFACE: &str = "eth0";
/// Receive and transmit columns per line of `/proc/net/dev`.
const NET_DEV_COLUMNS: usize = 16;

/// Counters of one interface, cumulative since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InterfaceCounters {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Packets dropped while sending.
    pub tx_dropped: u64,
}

/// The interfaces (loopback left out) of each network namespace in `netns`, in order, read by
/// one thread that visits them all. A namespace that cannot be entered or read gets an error
/// naming it.
pub(crate) fn read_all(netns: Vec<PathBuf>) -> Vec<Result<Vec<InterfaceCounters>, String>> {
    if netns.is_empty() {
        return Vec::new();
    }
    let count = netns.len();
    let visit = move || netns.iter().map(|ns| read_in(ns)).collect::<Vec<_>>();
    let joined = std::thread::Builder::new()
        .name("netns-stats".into())
        .spawn(visit)
        .map(|t| t.join());
    match joined {
        Ok(Ok(results)) => results,
        Ok(Err(_)) => vec![Err("the netns stats thread panicked".to_string()); count],
        Err(e) => vec![Err(format!("cannot start the netns stats thread: {e}")); count],
    }
}

/// Joins `netns` (this thread only) and reads its interfaces.
fn read_in(netns: &Path) -> Result<Vec<InterfaceCounters>, String> {
    let file = File::open(netns).map_err(|e| format!("opening netns {}: {e}", netns.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("entering netns {}: {e}", netns.display()))?;
    let text = std::fs::read_to_string(THREAD_NET_DEV)
        .map_err(|e| format!("reading {THREAD_NET_DEV} in netns {}: {e}", netns.display()))?;
    parse(&text).map_err(|e| format!("{THREAD_NET_DEV} in netns {}: {e}", netns.display()))
}

/// Parses `/proc/net/dev`: two header lines, then `name: <8 rx columns> <8 tx columns>`.
pub(crate) fn parse(text: &str) -> Result<Vec<InterfaceCounters>, String> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, columns)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == LOOPBACK {
            continue;
        }
        let numbers: Vec<u64> = columns
            .split_whitespace()
            .map(|n| {
                n.parse::<u64>()
                    .map_err(|_| format!("interface {name}: bad counter {n:?}"))
            })
            .collect::<Result<_, _>>()?;
        if numbers.len() < NET_DEV_COLUMNS {
            return Err(format!(
                "interface {name}: {} counters, expected {NET_DEV_COLUMNS}",
                numbers.len()
            ));
        }
        out.push(InterfaceCounters {
            name: name.to_string(),
            rx_bytes: numbers[0],
            rx_packets: numbers[1],
            rx_errors: numbers[2],
            rx_dropped: numbers[3],
            tx_bytes: numbers[8],
            tx_packets: numbers[9],
            tx_errors: numbers[10],
            tx_dropped: numbers[11],
        });
    }
    Ok(out)
}

/// CRI's `NetworkUsage`: `eth0` (or else the first interface) as the default, the rest after.
pub(crate) fn network_usage(
    timestamp: i64,
    mut interfaces: Vec<InterfaceCounters>,
) -> NetworkUsage {
    let default = interfaces
        .iter()
        .position(|i| i.name == DEFAULT_INTERFACE)
        .unwrap_or(0);
    let default_interface =
        (!interfaces.is_empty()).then(|| interface_usage(&interfaces.remove(default)));
    NetworkUsage {
        timestamp,
        default_interface,
        interfaces: interfaces.iter().map(interface_usage).collect(),
    }
}

fn interface_usage(i: &InterfaceCounters) -> NetworkInterfaceUsage {
    NetworkInterfaceUsage {
        name: i.name.clone(),
        rx_bytes: value(i.rx_bytes),
        rx_errors: value(i.rx_errors),
        tx_bytes: value(i.tx_bytes),
        tx_errors: value(i.tx_errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     480       6    0    0    0     0          0         0      480       6    0    0    0     0       0          0
  eth0:12345678901  1200    1    2    0     0          0         0    98765     900    3    4    0     0       0          0
 net1: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0
";

    #[test]
    fn parses_counters_and_skips_loopback() {
        let got = parse(SAMPLE).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 12_345_678_901,
                rx_packets: 1200,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 98765,
                tx_packets: 900,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
        assert_eq!(got[1].name, "net1");
        assert_eq!(got[1].tx_bytes, 20);
    }

    #[test]
    fn refuses_short_or_garbled_lines() {
        let head = "h1\nh2\n";
        assert!(
            parse(&format!("{head}eth0: 1 2 3\n"))
                .unwrap_err()
                .contains("eth0")
        );
        assert!(
            parse(&format!(
                "{head}eth0: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n"
            ))
            .is_err()
        );
        assert!(parse(head).unwrap().is_empty());
    }

    #[test]
    fn eth0_is_the_default_interface() {
        let mut ifs = parse(SAMPLE).unwrap();
        ifs.reverse();
        let usage = network_usage(7, ifs);
        assert_eq!(usage.timestamp, 7);
        let default = usage.default_interface.unwrap();
        assert_eq!(default.name, "eth0");
        assert_eq!(default.rx_bytes.unwrap().value, 12_345_678_901);
        assert_eq!(default.tx_errors.unwrap().value, 3);
        assert_eq!(usage.interfaces.len(), 1);
        assert_eq!(usage.interfaces[0].name, "net1");
        let only = network_usage(
            1,
            vec![InterfaceCounters {
                name: "net9".into(),
                ..Default::default()
            }],
        );
        assert_eq!(only.default_interface.unwrap().name, "net9");
        assert!(network_usage(1, vec![]).default_interface.is_none());
    }

    /// Needs root: a fresh network namespace shows its own loopback only, not the host's
    /// interfaces, so nothing is reported; a missing namespace is named in the error.
    #[test]
    fn reads_inside_the_namespace_not_the_host() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let pin = NetnsPin::new(&dir.path().join("ns"));
        let host = parse(&std::fs::read_to_string(THREAD_NET_DEV).unwrap()).unwrap();
        assert!(!host.is_empty(), "the host has interfaces besides lo");
        let results = read_all(vec![pin.path.clone(), dir.path().join("missing")]);
        assert_eq!(
            results[0].as_ref().unwrap(),
            &Vec::<InterfaceCounters>::new(),
            "only lo inside"
        );
        assert!(
            results[1].as_ref().unwrap_err().contains("missing"),
            "{:?}",
            results[1]
        );
    }

    /// A network namespace pinned by a bind mount, made on a throwaway thread; unmounted on drop.
    struct NetnsPin {
        path: PathBuf,
    }

    impl NetnsPin {
        fn new(path: &Path) -> NetnsPin {
            std::fs::write(path, b"").unwrap();
            let target = path.to_path_buf();
            std::thread::spawn(move || {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .unwrap();
            })
            .join()
            .unwrap();
            NetnsPin {
                path: path.to_path_buf(),
            }
        }
    }

    impl Drop for NetnsPin {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
