//! The registry client: sessions per repository that resolve manifests and stream blobs,
//! trying the configured hosts in order and doing the auth handshake per host.
//!
//! Why not `oci-client`'s `Client` (0.18): we read its API and it misses what a CRI runtime
//! needs here — one TLS setup per client (we need per-host CA and skip_verify, so one client per
//! host), no per-host headers, no `override_path`, a mirror is a bare host name, no OAuth2
//! refresh-token (`identity_token`) flow, and it spends an extra `GET /v2/` round trip per
//! repository before the first request instead of reacting to the 401 challenge. What it does
//! have (manifest types, blob streaming, bearer tokens) is a small part of this crate, so we
//! build on `reqwest` (which `oci-client` itself uses) and keep the whole flow in one place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use tracing::{debug, warn};

use crate::auth::{Challenge, fetch_token, parse_challenges};
use crate::credentials::{Credentials, Secret, from_docker_config};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::hosts::{RegistryHost, hosts_for};
use crate::manifest::{Descriptor, ImageManifest, MANIFEST_ACCEPT, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;

/// Manifests larger than this are refused (containerd uses the same bound).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
const USER_AGENT: &str = concat!("longshore/", env!("CARGO_PKG_VERSION"));
const ERROR_BODY_PREFIX: usize = 300;

/// How the client finds hosts and credentials.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// containerd-style `hosts.toml` directory (`<dir>/<registry>/hosts.toml`); `None`: defaults.
    pub config_path: Option<PathBuf>,
    /// A docker-style `config.json` with `auths`, used when a request brings no credentials.
    pub docker_config_path: Option<PathBuf>,
    /// TCP + TLS connect timeout per host.
    pub connect_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            config_path: None,
            docker_config_path: None,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// TLS settings that need their own HTTP client.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TlsKey {
    ca_files: Vec<PathBuf>,
    skip_verify: bool,
}

/// A registry client; cheap to clone, shares HTTP connection pools per TLS setup.
#[derive(Clone)]
pub struct Client {
    config: Arc<RegistryConfig>,
    http: Arc<Mutex<HashMap<TlsKey, reqwest::Client>>>,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: RegistryConfig) -> Self {
        Client {
            config: Arc::new(config),
            http: Arc::default(),
        }
    }

    /// Open a session for `reference`'s repository. Hosts and docker config are read now, so
    /// edits to hosts.toml apply to the next pull without a restart.
    pub fn session(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<Session> {
        let hosts = hosts_for(self.config.config_path.as_deref(), reference.registry())?;
        let mut states = Vec::with_capacity(hosts.len());
        for host in hosts {
            let http = self.http_client(&host)?;
            let secret = self.secret_for(&host, reference, credentials)?;
            let initial = match &secret {
                Some(Secret::RegistryToken(t)) => AuthState::Bearer(t.clone()),
                _ => AuthState::Anonymous,
            };
            states.push(HostState {
                host,
                http,
                secret,
                auth: tokio::sync::Mutex::new((initial, 0)),
            });
        }
        Ok(Session {
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            hosts: states,
        })
    }

    /// Request credentials go to the registry itself (or the host `server_address` names);
    /// any host may also have an entry in the docker config.
    fn secret_for(
        &self,
        host: &RegistryHost,
        reference: &Reference,
        given: Option<&Credentials>,
    ) -> Result<Option<Secret>> {
        if let Some(c) = given.filter(|c| !c.is_empty()) {
            let applies = match c.server_host() {
                Some(server) => server == host.authority || server == reference.registry(),
                None => host.upstream,
            };
            if applies {
                return c.secret();
            }
        }
        if let Some(path) = &self.config.docker_config_path {
            let lookup = if host.upstream {
                reference.registry()
            } else {
                &host.authority
            };
            let found = match from_docker_config(path, lookup)? {
                Some(c) => Some(c),
                None if lookup != host.authority => from_docker_config(path, &host.authority)?,
                None => None,
            };
            if let Some(c) = found {
                return c.secret();
            }
        }
        Ok(None)
    }

    fn http_client(&self, host: &RegistryHost) -> Result<reqwest::Client> {
        let key = TlsKey {
            ca_files: host.ca_files.clone(),
            skip_verify: host.skip_verify,
        };
        let mut cache = self.http.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.config.connect_timeout)
            .tcp_nodelay(true)
            .tls_danger_accept_invalid_certs(key.skip_verify);
        let mut certs = Vec::new();
        for path in &key.ca_files {
            let pem = std::fs::read(path).map_err(|e| Error::Config {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let bundle =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
                    path: path.clone(),
                    reason: format!("not a PEM certificate bundle: {e}"),
                })?;
            certs.extend(bundle);
        }
        if !certs.is_empty() {
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| Error::Config {
            path: PathBuf::from(host.base_url()),
            reason: format!("cannot build HTTP client: {e}"),
        })?;
        cache.insert(key, client.clone());
        Ok(client)
    }
}

#[derive(Clone)]
enum AuthState {
    Anonymous,
    Basic,
    Bearer(String),
}

struct HostState {
    host: RegistryHost,
    http: reqwest::Client,
    secret: Option<Secret>,
    /// The current auth and a generation, so that concurrent requests that all got a 401 fetch
    /// one token, not one each.
    auth: tokio::sync::Mutex<(AuthState, u64)>,
}

/// What a host may be asked to do.
#[derive(Clone, Copy, Debug)]
enum Capability {
    Resolve,
    Pull,
}

/// A manifest or index as fetched, with its verified digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// The media type the document declares (or the registry's Content-Type).
    pub media_type: String,
    /// The exact bytes, to store and to digest.
    pub bytes: Bytes,
    /// The parsed document.
    pub manifest: Manifest,
}

/// A resolved image: the index (if the reference named one) and the manifest for our platform.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The index / manifest list the reference pointed at, if any.
    pub index: Option<Fetched>,
    /// The platform's image manifest document.
    pub manifest: Fetched,
    /// `manifest`, parsed.
    pub image: ImageManifest,
}

/// A blob body as it arrives. The caller digests and unpacks while downloading.
pub struct BlobStream {
    /// Content-Length, if the registry sent one.
    pub content_length: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl Stream for BlobStream {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// One repository on one registry, with the hosts to try and their auth state.
pub struct Session {
    registry: String,
    repository: String,
    hosts: Vec<HostState>,
}

impl Session {
    /// Resolve `reference` (tag or digest) and, for an index, fetch the manifest for `platform`.
    pub async fn pull_manifest(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage> {
        let top = self.resolve(reference).await?;
        match &top.manifest {
            Manifest::Image(image) => Ok(ResolvedImage {
                image: image.clone(),
                index: None,
                manifest: top,
            }),
            Manifest::Index(index) => {
                let entry = index
                    .select(platform)
                    .ok_or_else(|| Error::NoMatchingPlatform {
                        reference: reference.to_string(),
                        platform: platform.to_string(),
                    })?;
                debug!(%reference, digest = %entry.digest, %platform, "selected platform manifest");
                let fetched = self.fetch_manifest(&entry.digest).await?;
                if fetched.bytes.len() as u64 != entry.size {
                    return Err(Error::invalid(
                        entry.digest.as_str(),
                        format!(
                            "index says {} bytes, manifest has {}",
                            entry.size,
                            fetched.bytes.len()
                        ),
                    ));
                }
                match &fetched.manifest {
                    Manifest::Image(image) => Ok(ResolvedImage {
                        image: image.clone(),
                        index: Some(top),
                        manifest: fetched,
                    }),
                    Manifest::Index(_) => Err(Error::invalid(
                        entry.digest.as_str(),
                        "nested index is not supported",
                    )),
                }
            }
        }
    }

    /// Fetch the manifest or index `reference` names (tags need a host with `resolve`).
    pub async fn resolve(&self, reference: &Reference) -> Result<Fetched> {
        let capability = if reference.digest().is_some() {
            Capability::Pull
        } else {
            Capability::Resolve
        };
        self.manifest(reference.object(), reference.digest(), capability)
            .await
    }

    /// Fetch a manifest by digest.
    pub async fn fetch_manifest(&self, digest: &Digest) -> Result<Fetched> {
        self.manifest(digest.as_str(), Some(digest), Capability::Pull)
            .await
    }

    async fn manifest(
        &self,
        object: &str,
        pinned: Option<&Digest>,
        capability: Capability,
    ) -> Result<Fetched> {
        let what = format!("{}/{}:{}", self.registry, self.repository, object);
        let mut last = None;
        for hs in self.hosts_with(capability) {
            let url = self.url(hs, "manifests", object);
            match self.fetch_manifest_from(hs, &url, &what, pinned).await {
                Ok(f) => return Ok(f),
                Err(e) if retry_next_host(&e) => {
                    debug!(%url, error = %e, "manifest fetch failed; trying next host");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.no_hosts(capability)))
    }

    async fn fetch_manifest_from(
        &self,
        hs: &HostState,
        url: &str,
        what: &str,
        pinned: Option<&Digest>,
    ) -> Result<Fetched> {
        let response = self.send(hs, url, Some(MANIFEST_ACCEPT), what).await?;
        let headers = response.headers().clone();
        let bytes = read_limited(response, url, MAX_MANIFEST_BYTES).await?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = pinned {
            if &digest != expected {
                return Err(Error::invalid(
                    what,
                    format!("content digest is {digest}, expected {expected}"),
                ));
            }
        }
        if let Some(header) = header_str(&headers, DOCKER_CONTENT_DIGEST) {
            if header.starts_with("sha256:") && header != digest.as_str() {
                return Err(Error::invalid(
                    what,
                    format!("registry says digest {header}, content is {digest}"),
                ));
            }
        }
        let content_type = header_str(&headers, CONTENT_TYPE.as_str());
        let manifest = Manifest::parse(what, content_type, &bytes)?;
        let media_type = match &manifest {
            Manifest::Image(m) => m.media_type.clone(),
            Manifest::Index(i) => i.media_type.clone(),
        }
        .or(content_type.map(str::to_string))
        .unwrap_or_default();
        Ok(Fetched {
            digest,
            media_type,
            bytes,
            manifest,
        })
    }

    /// Fetch a small blob (an image config) whole, verifying size and digest.
    pub async fn fetch_blob_bytes(&self, desc: &Descriptor, max: u64) -> Result<Bytes> {
        if desc.size > max {
            return Err(Error::invalid(
                desc.digest.as_str(),
                format!("blob of {} bytes is over the {max} byte limit", desc.size),
            ));
        }
        let stream = self.fetch_blob(desc).await?;
        let mut buf = BytesMut::with_capacity(desc.size as usize);
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if (buf.len() + chunk.len()) as u64 > desc.size {
                return Err(Error::invalid(
                    desc.digest.as_str(),
                    format!("blob is larger than its descriptor's {} bytes", desc.size),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        let bytes = buf.freeze();
        if bytes.len() as u64 != desc.size {
            return Err(Error::invalid(
                desc.digest.as_str(),
                format!(
                    "blob has {} bytes, descriptor says {}",
                    bytes.len(),
                    desc.size
                ),
            ));
        }
        let digest = Digest::of(&bytes);
        if digest != desc.digest {
            return Err(Error::invalid(
                desc.digest.as_str(),
                format!("content digest is {digest}"),
            ));
        }
        Ok(bytes)
    }

    /// Open a blob as a byte stream from the first host that has it. Not verified here: the
    /// caller hashes as it consumes (it unpacks at the same time).
    pub async fn fetch_blob(&self, desc: &Descriptor) -> Result<BlobStream> {
        let what = format!("{}/{}@{}", self.registry, self.repository, desc.digest);
        let mut last = None;
        for hs in self.hosts_with(Capability::Pull) {
            let url = self.url(hs, "blobs", desc.digest.as_str());
            match self.send(hs, &url, None, &what).await {
                Ok(response) => {
                    let content_length = response.content_length();
                    let url_owned = url.clone();
                    let inner = response
                        .bytes_stream()
                        .map_err(move |source| Error::Network {
                            url: url_owned.clone(),
                            source,
                        })
                        .boxed();
                    return Ok(BlobStream {
                        content_length,
                        inner,
                    });
                }
                Err(e) if retry_next_host(&e) => {
                    debug!(%url, error = %e, "blob fetch failed; trying next host");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.no_hosts(Capability::Pull)))
    }

    fn hosts_with(&self, capability: Capability) -> impl Iterator<Item = &HostState> {
        self.hosts.iter().filter(move |h| match capability {
            Capability::Resolve => h.host.capabilities.resolve,
            Capability::Pull => h.host.capabilities.pull,
        })
    }

    fn no_hosts(&self, capability: Capability) -> Error {
        Error::NoHosts {
            registry: self.registry.clone(),
            capability: match capability {
                Capability::Resolve => "resolve",
                Capability::Pull => "pull",
            },
        }
    }

    /// `<base>/<repo>/<kind>/<object>`, plus `?ns=<registry>` for mirrors (as containerd sends).
    fn url(&self, hs: &HostState, kind: &str, object: &str) -> String {
        let mut url = format!(
            "{}/{}/{}/{}",
            hs.host.base_url(),
            self.repository,
            kind,
            object
        );
        if !hs.host.upstream {
            url.push_str("?ns=");
            url.push_str(&self.registry);
        }
        url
    }

    /// GET `url` with the host's auth; on a 401 do the challenge once and retry.
    async fn send(
        &self,
        hs: &HostState,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<reqwest::Response> {
        let mut retried = false;
        loop {
            let (state, generation) = hs.auth.lock().await.clone();
            let mut request = hs.http.get(url);
            for (name, value) in &hs.host.headers {
                request = request.header(name, value);
            }
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            request = match (&state, &hs.secret) {
                (AuthState::Bearer(token), _) => request.bearer_auth(token),
                (AuthState::Basic, Some(Secret::Basic { username, password })) => {
                    request.basic_auth(username, Some(password))
                }
                _ => request,
            };
            debug!(%url, "registry request");
            let response = request.send().await.map_err(|source| Error::Network {
                url: url.to_string(),
                source,
            })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                self.authorize(hs, &response, generation, url).await?;
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            return Err(status_error(response, url, what).await);
        }
    }

    /// React to a 401: pick the challenge and set the host's auth state (unless a concurrent
    /// request already did).
    async fn authorize(
        &self,
        hs: &HostState,
        response: &reqwest::Response,
        seen_generation: u64,
        url: &str,
    ) -> Result<()> {
        let mut guard = hs.auth.lock().await;
        if guard.1 != seen_generation {
            return Ok(());
        }
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            Challenge::Basic => None,
        });
        let state = if let Some((realm, service, scope)) = bearer {
            let default_scope = format!("repository:{}:pull", self.repository);
            let scope = scope.as_deref().unwrap_or(&default_scope);
            let secret = match &hs.secret {
                Some(Secret::RegistryToken(_)) => None,
                other => other.as_ref(),
            };
            AuthState::Bearer(
                fetch_token(&hs.http, realm, service.as_deref(), scope, secret).await?,
            )
        } else if challenges.contains(&Challenge::Basic)
            && matches!(hs.secret, Some(Secret::Basic { .. }))
        {
            AuthState::Basic
        } else {
            let detail = if hs.secret.is_some() {
                "credentials not accepted"
            } else {
                "registry requires credentials"
            };
            return Err(Error::Unauthorized {
                url: url.to_string(),
                detail: detail.to_string(),
            });
        };
        *guard = (state, seen_generation + 1);
        Ok(())
    }
}

/// Mirrors may lack content or be down: try the next host for these.
fn retry_next_host(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::Network | ErrorKind::Unauthorized
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn read_limited(response: reqwest::Response, url: &str, max: u64) -> Result<Bytes> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(Error::invalid(
            url,
            format!("document over the {max} byte limit"),
        ));
    }
    let mut buf = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| Error::Network {
            url: url.to_string(),
            source,
        })?;
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(Error::invalid(
                url,
                format!("document over the {max} byte limit"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn status_error(response: reqwest::Response, url: &str, what: &str) -> Error {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_PREFIX)]).into_owned();
    match status {
        StatusCode::NOT_FOUND => Error::NotFound {
            what: what.to_string(),
            url: url.to_string(),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
            url: url.to_string(),
            detail: body,
        },
        _ => {
            warn!(%url, status = status.as_u16(), "unexpected registry status");
            Error::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body,
            }
        }
    }
}
