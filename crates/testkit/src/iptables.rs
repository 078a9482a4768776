//! iptables as tests see it: a snapshot of every rule and chain, and removal of what a test (or
//! the CNI plugins it ran) added, so the host's firewall is as it was.

use std::collections::BTreeSet;
use std::process::Command;

use crate::quiet;

/// Chains that CNI's portmap plugin shares between every pod on a node.
pub const SHARED_CHAINS: &[&str] = &[
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
];

const BUILTIN_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// `iptables-save` and `ip6tables-save` as a set of `<family>/<table> <line>` strings: `-A` rules
/// and `:CHAIN` declarations, counters dropped.
pub fn lines() -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for (family, save) in [("ip", "iptables-save"), ("ip6", "ip6tables-save")] {
        let out = Command::new(save).output().expect("running iptables-save");
        let mut table = String::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = format!("{family}/{t}");
            } else if line.starts_with(':') {
                let chain = line.split_whitespace().next().unwrap_or_default();
                lines.insert(format!("{table} {chain}"));
            } else if line.starts_with("-A") {
                lines.insert(format!("{table} {line}"));
            }
        }
    }
    lines
}

/// Deletes the given [`lines`] entries: rules first, then (non-builtin) chains.
pub fn remove(lines: &[String]) {
    for line in lines.iter().rev() {
        let Some((table, rule)) = line.split_once(' ') else {
            continue;
        };
        let (cmd, table) = command_for(table);
        if let Some(rest) = rule.strip_prefix("-A ") {
            // iptables-save quotes like a shell, so the shell can split it back.
            quiet("sh", &["-c", &format!("{cmd} -w -t {table} -D {rest}")]);
        }
    }
    for line in lines {
        let Some((table, chain)) = line.split_once(' ') else {
            continue;
        };
        let (cmd, table) = command_for(table);
        if let Some(chain) = chain.strip_prefix(':') {
            if !BUILTIN_CHAINS.contains(&chain) {
                quiet(cmd, &["-w", "-t", table, "-F", chain]);
                quiet(cmd, &["-w", "-t", table, "-X", chain]);
            }
        }
    }
}

/// Removes every rule and chain that is not in `before`.
pub fn remove_added(before: &BTreeSet<String>) {
    let added: Vec<String> = lines().difference(before).cloned().collect();
    remove(&added);
}

/// Removes portmap's shared chains (and the jumps to them) if they appeared since `before` and
/// no pod's rule is in them any more: other tests may be using them otherwise.
pub fn remove_unused_shared_chains(before: &BTreeSet<String>) {
    let now = lines();
    if now.iter().any(|l| l.contains("-A CNI-HOSTPORT-DNAT ")) {
        return;
    }
    let made_here: Vec<String> = now
        .iter()
        .filter(|l| !before.contains(*l) && SHARED_CHAINS.iter().any(|c| l.contains(c)))
        .cloned()
        .collect();
    remove(&made_here);
}

/// nftables tables (`table ip nat`); iptables-nft creates them on first use and leaves them.
pub fn nft_tables() -> BTreeSet<String> {
    let out = Command::new("nft").args(["list", "tables"]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Deletes nftables tables that appeared since `before`, once the rules in them are gone.
pub fn remove_new_nft_tables(before: &BTreeSet<String>) {
    for table in nft_tables().difference(before) {
        let args: Vec<&str> = table.split_whitespace().collect();
        if let ["table", family, name] = args[..] {
            quiet("nft", &["delete", "table", family, name]);
        }
    }
}

/// `ip/nat` -> (`iptables`, `nat`), `ip6/nat` -> (`ip6tables`, `nat`).
fn command_for(family_table: &str) -> (&'static str, &str) {
    match family_table.split_once('/') {
        Some(("ip6", table)) => ("ip6tables", table),
        Some((_, table)) => ("iptables", table),
        None => ("iptables", family_table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_their_commands() {
        assert_eq!(command_for("ip6/nat"), ("ip6tables", "nat"));
        assert_eq!(command_for("ip/filter"), ("iptables", "filter"));
    }
}
