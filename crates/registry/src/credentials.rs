//! Registry credentials: from the CRI request (`AuthConfig`) or from a docker-style config.json.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::DOCKER_HUB;

/// Docker Hub's key in config.json, a legacy of the v1 API.
const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Credentials as the CRI `AuthConfig` carries them; empty strings mean "not given".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name for basic auth or the token server.
    pub username: String,
    /// Password for basic auth or the token server.
    pub password: String,
    /// base64 of `username:password`, used when username/password are empty.
    pub auth: String,
    /// The registry these are for; if set, they are sent only to that host.
    pub server_address: String,
    /// An OAuth2 refresh token for the token server (`grant_type=refresh_token`).
    pub identity_token: String,
    /// A bearer token to send to the registry as is.
    pub registry_token: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets into logs.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// The usable form of credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    /// User and password: basic auth, or basic auth to the token server.
    Basic { username: String, password: String },
    /// A refresh token for the OAuth2 POST flow.
    IdentityToken { username: String, token: String },
    /// A bearer token sent straight to the registry.
    RegistryToken(String),
}

impl Credentials {
    /// True if nothing was given.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.auth.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// The host `server_address` names, if any (accepts `https://host/v1/`-style values).
    pub(crate) fn server_host(&self) -> Option<String> {
        let s = self.server_address.trim();
        if s.is_empty() {
            return None;
        }
        Some(host_of(s))
    }

    pub(crate) fn secret(&self) -> Result<Option<Secret>> {
        if !self.registry_token.is_empty() {
            return Ok(Some(Secret::RegistryToken(self.registry_token.clone())));
        }
        let (mut username, mut password) = (self.username.clone(), self.password.clone());
        if username.is_empty() && password.is_empty() && !self.auth.is_empty() {
            let decoded = BASE64
                .decode(self.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Error::Config {
                    path: "auth".into(),
                    reason: "`auth` is not base64 of user:password".into(),
                })?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| Error::Config {
                path: "auth".into(),
                reason: "`auth` has no ':' between user and password".into(),
            })?;
            (username, password) = (u.to_string(), p.to_string());
        }
        if !self.identity_token.is_empty() {
            return Ok(Some(Secret::IdentityToken {
                username,
                token: self.identity_token.clone(),
            }));
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Secret::Basic { username, password }))
    }
}

/// `https://host:port/path` or `host:port` -> `host:port`.
fn host_of(s: &str) -> String {
    let s = s.split_once("://").map(|(_, rest)| rest).unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

/// Credentials for `host` (an authority such as `127.0.0.1:5001`, or `docker.io`) from a
/// docker-style config.json; `Ok(None)` if the file or the entry does not exist.
pub fn from_docker_config(path: &Path, host: &str) -> Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Config {
                path: path.into(),
                reason: e.to_string(),
            });
        }
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let docker_hub =
        host == DOCKER_HUB || host == "registry-1.docker.io" || host == "index.docker.io";
    let entry = config.auths.iter().find(|(key, _)| {
        let key_host = host_of(key);
        key_host == host
            || (docker_hub
                && (key.as_str() == DOCKER_HUB_CONFIG_KEY
                    || key_host == DOCKER_HUB
                    || key_host == "index.docker.io"))
    });
    Ok(entry.map(|(_, a)| Credentials {
        username: a.username.clone(),
        password: a.password.clone(),
        auth: a.auth.clone(),
        server_address: String::new(),
        identity_token: a.identitytoken.clone(),
        registry_token: a.registrytoken.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_auth_field() {
        let c = Credentials {
            auth: BASE64.encode("u:p:w"),
            ..Default::default()
        };
        assert!(
            matches!(c.secret().unwrap(), Some(Secret::Basic { username, password }) if username == "u" && password == "p:w")
        );
        assert!(Credentials::default().secret().unwrap().is_none());
        let bad = Credentials {
            auth: "!!".into(),
            ..Default::default()
        };
        assert!(bad.secret().is_err());
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"127.0.0.1:5001":{{"username":"a","password":"b"}}}}}}"#,
                BASE64.encode("hub:secret")
            ),
        )
        .unwrap();
        let hub = from_docker_config(&path, "registry-1.docker.io")
            .unwrap()
            .unwrap();
        assert!(
            matches!(hub.secret().unwrap(), Some(Secret::Basic { username, .. }) if username == "hub")
        );
        let local = from_docker_config(&path, "127.0.0.1:5001")
            .unwrap()
            .unwrap();
        assert_eq!(local.username, "a");
        assert!(from_docker_config(&path, "quay.io").unwrap().is_none());
        assert!(
            from_docker_config(&dir.path().join("missing"), "quay.io")
                .unwrap()
                .is_none()
        );
        assert_eq!(host_of("https://127.0.0.1:5001/v2/"), "127.0.0.1:5001");
    }
}
