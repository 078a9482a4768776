//! The files a pod's containers see at /etc/hostname, /etc/hosts and /etc/resolv.conf.

use std::path::Path;

use crate::api::{DnsConfig, PodSandboxConfig};

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const HOST_HOSTS: &str = "/etc/hosts";

/// The files [`write`] makes in the pod folder.
pub(crate) const NAMES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// The default /etc/hosts of a pod with its own network (kubelet mounts its own over it for
/// real pods; this is what crictl-made pods see).
fn default_hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

/// resolv.conf from CRI's DNSConfig, as containerd writes it.
pub(crate) fn resolv_conf(dns: &DnsConfig) -> String {
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    out
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the pod folder.
pub(crate) fn write(
    dir: &Path,
    config: &PodSandboxConfig,
    hostname: &str,
    host_network: bool,
) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    let hosts = if host_network {
        std::fs::read_to_string(HOST_HOSTS).unwrap_or_else(|_| default_hosts(hostname))
    } else {
        default_hosts(hostname)
    };
    std::fs::write(dir.join("hosts"), hosts)?;
    let resolv = match &config.dns_config {
        Some(dns)
            if !(dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty()) =>
        {
            resolv_conf(dns)
        }
        _ => std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default(),
    };
    std::fs::write(dir.join("resolv.conf"), resolv)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_has_every_part() {
        let dns = DnsConfig {
            servers: vec!["10.10.10.10".into()],
            searches: vec!["google.com".into()],
            options: vec!["ndots:8".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "search google.com\nnameserver 10.10.10.10\noptions ndots:8\n"
        );
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = PodSandboxConfig::default();
        write(dir.path(), &config, "web-1", false).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("hostname")).unwrap(),
            "web-1\n"
        );
        assert!(
            std::fs::read_to_string(dir.path().join("hosts"))
                .unwrap()
                .contains("web-1")
        );
    }
}
