//! Registry hosts and mirrors from containerd's `hosts.toml` layout:
//! `<config_path>/<registry>/hosts.toml`, else `<config_path>/_default/hosts.toml`, else defaults.
//!
//! ```toml
//! server = "https://registry-1.docker.io"      # the upstream; tried last, only if listed
//! [host."http://127.0.0.1:5000"]
//!   capabilities = ["pull", "resolve"]
//!   ca = "/etc/certs/mirror-ca.pem"           # or a list; relative to this file's directory
//!   skip_verify = false
//!   override_path = false                     # true: the URL path is the API root (no /v2)
//!   [host."http://127.0.0.1:5000".header]
//!     x-mirror = "yes"
//! ```
//!
//! Unlike containerd, a hosts.toml without `server` does not fall back to the upstream: the mirrors
//! it lists are the only hosts used (tests and air-gapped nodes rely on that).

use std::path::{Path, PathBuf};

use tracing::debug;

use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;

const HOSTS_FILE: &str = "hosts.toml";
const DEFAULT_DIR: &str = "_default";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const API_ROOT: &str = "/v2";

/// http or https.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP: loopback by default, elsewhere only when configured.
    Http,
    /// HTTPS with system roots plus configured CAs.
    Https,
}

/// What a host may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Fetch blobs and manifests by digest.
    pub pull: bool,
    /// Resolve a tag to a manifest.
    pub resolve: bool,
    /// Push (never used by Longshore; parsed for completeness).
    pub push: bool,
}

impl Capabilities {
    const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
}

/// One endpoint to try for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// http or https.
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: String,
    /// The API root path, normally `/v2`.
    pub api_root: String,
    /// What this host may do.
    pub capabilities: Capabilities,
    /// Extra CA certificates (PEM files) to trust for this host.
    pub ca_files: Vec<PathBuf>,
    /// Do not verify the TLS certificate at all.
    pub skip_verify: bool,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// True for the registry itself (as opposed to a mirror): request credentials go only here,
    /// and mirrors get `?ns=<registry>` instead.
    pub upstream: bool,
}

impl RegistryHost {
    /// `scheme://authority/api_root`, no trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.authority, self.api_root)
    }
}

/// The hosts to try, in order, for `registry` (as named in references, e.g. `docker.io`).
pub fn hosts_for(config_path: Option<&Path>, registry: &str) -> Result<Vec<RegistryHost>> {
    if let Some(dir) = config_path {
        for candidate in [
            dir.join(registry).join(HOSTS_FILE),
            dir.join(DEFAULT_DIR).join(HOSTS_FILE),
        ] {
            match std::fs::read_to_string(&candidate) {
                Ok(text) => {
                    debug!(file = %candidate.display(), registry, "using registry hosts file");
                    return parse_hosts_file(&candidate, &text, registry);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Config {
                        path: candidate,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(vec![default_host(registry)])
}

/// The upstream host when nothing is configured.
fn default_host(registry: &str) -> RegistryHost {
    let (scheme, authority) = if registry == DOCKER_HUB {
        (Scheme::Https, DOCKER_HUB_API_HOST.to_string())
    } else if is_loopback(registry) {
        // containerd also talks plain HTTP to a local registry without configuration.
        (Scheme::Http, registry.to_string())
    } else {
        (Scheme::Https, registry.to_string())
    };
    RegistryHost {
        scheme,
        authority,
        api_root: API_ROOT.to_string(),
        capabilities: Capabilities::ALL,
        ca_files: Vec::new(),
        skip_verify: false,
        headers: Vec::new(),
        upstream: true,
    }
}

/// Is `authority` (host[:port]) localhost, 127.0.0.0/8 or ::1?
pub fn is_loopback(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn parse_hosts_file(path: &Path, text: &str, registry: &str) -> Result<Vec<RegistryHost>> {
    let bad = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let base_dir = path.parent().unwrap_or(Path::new("/"));
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(e.to_string()))?;
    let mut hosts = Vec::new();
    if let Some(entries) = table.get("host") {
        let entries = entries
            .as_table()
            .ok_or_else(|| bad("`host` must be a table".into()))?;
        for (url, entry) in entries {
            let entry = entry
                .as_table()
                .ok_or_else(|| bad(format!("host {url:?} must be a table")))?;
            let mut host =
                parse_host(url, entry, base_dir).map_err(|e| bad(format!("host {url:?}: {e}")))?;
            host.upstream = is_upstream(&host.authority, registry);
            hosts.push(host);
        }
    }
    if let Some(server) = table.get("server") {
        let server = server
            .as_str()
            .ok_or_else(|| bad("`server` must be a string".into()))?;
        let mut host = parse_host(server, &table, base_dir)
            .map_err(|e| bad(format!("server {server:?}: {e}")))?;
        host.upstream = true;
        hosts.push(host);
    }
    Ok(hosts)
}

fn is_upstream(authority: &str, registry: &str) -> bool {
    authority == registry || (registry == DOCKER_HUB && authority == DOCKER_HUB_API_HOST)
}

fn parse_host(
    url: &str,
    entry: &toml::Table,
    base_dir: &Path,
) -> std::result::Result<RegistryHost, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((other, _)) => return Err(format!("unsupported scheme {other:?}")),
        None => (Scheme::Https, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err("no host in URL".into());
    }
    let override_path = entry
        .get("override_path")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let api_root = if override_path || path.ends_with(API_ROOT) {
        path.to_string()
    } else {
        format!("{path}{API_ROOT}")
    };
    let capabilities = match entry.get("capabilities") {
        None => Capabilities::ALL,
        Some(v) => {
            let list = v.as_array().ok_or("capabilities must be a list")?;
            let mut caps = Capabilities {
                pull: false,
                resolve: false,
                push: false,
            };
            for c in list {
                match c.as_str() {
                    Some("pull") => caps.pull = true,
                    Some("resolve") => caps.resolve = true,
                    Some("push") => caps.push = true,
                    other => return Err(format!("unknown capability {other:?}")),
                }
            }
            caps
        }
    };
    let ca_files = match entry.get("ca") {
        None => Vec::new(),
        Some(toml::Value::String(s)) => vec![base_dir.join(s)],
        Some(toml::Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| base_dir.join(s))
                    .ok_or("ca entries must be strings")
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(_) => return Err("ca must be a string or a list".into()),
    };
    let skip_verify = entry
        .get("skip_verify")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let mut headers = Vec::new();
    if let Some(h) = entry.get("header") {
        for (name, value) in h.as_table().ok_or("header must be a table")? {
            match value {
                toml::Value::String(s) => headers.push((name.clone(), s.clone())),
                toml::Value::Array(list) => {
                    for v in list {
                        headers.push((
                            name.clone(),
                            v.as_str()
                                .ok_or("header values must be strings")?
                                .to_string(),
                        ));
                    }
                }
                _ => return Err(format!("header {name:?} must be a string or a list")),
            }
        }
    }
    Ok(RegistryHost {
        scheme,
        authority: authority.to_string(),
        api_root,
        capabilities,
        ca_files,
        skip_verify,
        headers,
        upstream: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let h = hosts_for(None, "docker.io").unwrap();
        assert_eq!(h[0].base_url(), "https://registry-1.docker.io/v2");
        assert_eq!(
            hosts_for(None, "127.0.0.1:5000").unwrap()[0].base_url(),
            "http://127.0.0.1:5000/v2"
        );
        assert_eq!(
            hosts_for(None, "localhost").unwrap()[0].scheme,
            Scheme::Http
        );
        assert_eq!(
            hosts_for(None, "[::1]:5000").unwrap()[0].scheme,
            Scheme::Http
        );
        assert_eq!(
            hosts_for(None, "quay.io").unwrap()[0].base_url(),
            "https://quay.io/v2"
        );
    }

    #[test]
    fn parses_mirrors_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("docker.io");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(HOSTS_FILE),
            r#"
server = "https://registry-1.docker.io"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  ca = ["a.pem", "/abs/b.pem"]
  [host."http://127.0.0.1:5000".header]
    x-one = "1"
    x-many = ["a", "b"]
[host."https://mirror.example/custom/api"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
"#,
        )
        .unwrap();
        let hosts = hosts_for(Some(dir.path()), "docker.io").unwrap();
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[0].base_url(), "http://127.0.0.1:5000/v2");
        assert_eq!(
            hosts[0].ca_files,
            vec![d.join("a.pem"), PathBuf::from("/abs/b.pem")]
        );
        assert_eq!(hosts[0].headers.len(), 3);
        assert!(!hosts[0].upstream && hosts[0].capabilities.resolve);
        assert_eq!(hosts[1].base_url(), "https://mirror.example/custom/api");
        assert!(hosts[1].skip_verify && !hosts[1].capabilities.resolve);
        assert_eq!(hosts[2].base_url(), "https://registry-1.docker.io/v2");
        assert!(hosts[2].upstream);
        // No file for quay.io and no _default: the upstream.
        assert_eq!(
            hosts_for(Some(dir.path()), "quay.io").unwrap()[0].authority,
            "quay.io"
        );
        // A _default file applies to every registry without its own.
        std::fs::create_dir_all(dir.path().join(DEFAULT_DIR)).unwrap();
        std::fs::write(
            dir.path().join(DEFAULT_DIR).join(HOSTS_FILE),
            "[host.\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        let hosts = hosts_for(Some(dir.path()), "quay.io").unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].authority, "127.0.0.1:5000");
    }

    #[test]
    fn bad_files_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x.io")).unwrap();
        std::fs::write(
            dir.path().join("x.io").join(HOSTS_FILE),
            "[host.\"ftp://a\"]\n",
        )
        .unwrap();
        assert!(matches!(
            hosts_for(Some(dir.path()), "x.io"),
            Err(Error::Config { .. })
        ));
    }
}
