//! Registry client against the real test registries.
//!
//! Start them and push the images first (from the repository root):
//!
//! ```sh
//! tests/registry/start.sh                     # 127.0.0.1:5000 (anon), :5001 (basic), :5002 (TLS+token)
//! python3 tests/images/build_images.py --registry-storage /tmp/longshore-registry/storage
//! cargo test -p longshore-registry
//! ```
//! `LONGSHORE_REGISTRY_DIR` overrides the registry directory (default /tmp/longshore-registry).

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use std::path::{Path, PathBuf};

use futures::StreamExt;
use longshore_registry::{
    Client, Credentials, Digest, ErrorKind, Manifest, Platform, Reference, RegistryConfig,
};

const USER: &str = "longshore";
const PASSWORD: &str = "longshore-pass";
const REFRESH_TOKEN: &str = "longshore-refresh-token";

fn registry_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("LONGSHORE_REGISTRY_DIR")
            .unwrap_or_else(|_| "/tmp/longshore-registry".into()),
    )
}

fn require_registry() {
    for port in [5000, 5001, 5002, 5003] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "no test registry on 127.0.0.1:{port}: run tests/registry/start.sh and tests/images/build_images.py"
        );
    }
}

fn repo_hosts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/registry/hosts.d")
}

fn client(config_path: Option<PathBuf>) -> Client {
    Client::new(RegistryConfig {
        config_path,
        ..Default::default()
    })
}

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    }
}

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: password.into(),
        ..Default::default()
    }
}

async fn pull_config(
    client: &Client,
    reference: &str,
    creds: Option<&Credentials>,
) -> longshore_registry::Result<serde_json::Value> {
    let r = Reference::parse(reference)?;
    let session = client.session(&r, creds)?;
    let resolved = session.pull_manifest(&r, &amd64()).await?;
    let config = session
        .fetch_blob_bytes(&resolved.image.config, 1 << 20)
        .await?;
    Ok(serde_json::from_slice(&config).expect("config is JSON"))
}

#[tokio::test]
async fn pulls_oci_and_docker_manifests_through_mirrors() {
    require_registry();
    let c = client(Some(repo_hosts_dir()));
    // registry.k8s.io is mirrored to 127.0.0.1:5000 by tests/registry/hosts.d.
    let cfg = pull_config(&c, "registry.k8s.io/e2e-test-images/busybox:1.29-2", None)
        .await
        .unwrap();
    assert_eq!(cfg["architecture"], "amd64");
    // docker.io/library/busybox is pushed as Docker schema 2.
    let r = Reference::parse("busybox").unwrap();
    let session = c.session(&r, None).unwrap();
    let resolved = session.pull_manifest(&r, &amd64()).await.unwrap();
    assert_eq!(
        resolved.manifest.media_type,
        longshore_registry::DOCKER_MANIFEST
    );
    assert!(resolved.index.is_none());
    // By digest: the same manifest.
    let by_digest = Reference::parse(&r.repo_digest(&resolved.manifest.digest)).unwrap();
    let again = c
        .session(&by_digest, None)
        .unwrap()
        .pull_manifest(&by_digest, &amd64())
        .await
        .unwrap();
    assert_eq!(again.manifest.bytes, resolved.manifest.bytes);
}

#[tokio::test]
async fn streams_blobs_that_match_their_digest() {
    require_registry();
    let c = client(None);
    let r = Reference::parse("127.0.0.1:5000/longshore-test/layers:latest").unwrap();
    let session = c.session(&r, None).unwrap();
    let resolved = session.pull_manifest(&r, &amd64()).await.unwrap();
    assert_eq!(resolved.image.layers.len(), 3);
    for layer in &resolved.image.layers {
        let mut stream = session.fetch_blob(layer).await.unwrap();
        assert_eq!(stream.content_length, Some(layer.size));
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(Digest::of(&data), layer.digest);
    }
}

#[tokio::test]
async fn index_and_manifest_list_pick_this_platform() {
    require_registry();
    let c = client(None);
    for name in ["multiarch", "multiarch-docker"] {
        let r = Reference::parse(&format!("127.0.0.1:5000/longshore-test/{name}:latest")).unwrap();
        let session = c.session(&r, None).unwrap();
        let resolved = session.pull_manifest(&r, &Platform::host()).await.unwrap();
        let index = resolved.index.as_ref().expect("an index");
        assert!(matches!(index.manifest, Manifest::Index(_)));
        let cfg: serde_json::Value = serde_json::from_slice(
            &session
                .fetch_blob_bytes(&resolved.image.config, 1 << 20)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["architecture"], "amd64", "{name}");
        let arm = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        };
        let resolved = session.pull_manifest(&r, &arm).await.unwrap();
        let cfg: serde_json::Value = serde_json::from_slice(
            &session
                .fetch_blob_bytes(&resolved.image.config, 1 << 20)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (cfg["architecture"].as_str(), cfg["variant"].as_str()),
            (Some("arm"), Some("v7"))
        );
        let s390 = Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        };
        let err = session.pull_manifest(&r, &s390).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
}

#[tokio::test]
async fn unknown_tag_is_not_found() {
    require_registry();
    let err = pull_config(
        &client(None),
        "127.0.0.1:5000/longshore-test/layers:no-such-tag",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = pull_config(&client(None), "127.0.0.1:5000/no/such/repo:x", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn basic_auth() {
    require_registry();
    let c = client(None);
    let image = "127.0.0.1:5001/e2e-test-images/busybox:1.29-2";
    pull_config(&c, image, Some(&creds(USER, PASSWORD)))
        .await
        .unwrap();
    let err = pull_config(&c, image, Some(&creds(USER, "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let err = pull_config(&c, image, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    // The base64 `auth` form and a docker config.json work too.
    use base64::Engine as _;
    let auth = Credentials {
        auth: base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")),
        ..Default::default()
    };
    pull_config(&c, image, Some(&auth)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docker_config = dir.path().join("config.json");
    std::fs::write(
        &docker_config,
        format!(
            r#"{{"auths":{{"127.0.0.1:5001":{{"username":"{USER}","password":"{PASSWORD}"}}}}}}"#
        ),
    )
    .unwrap();
    let with_file = Client::new(RegistryConfig {
        docker_config_path: Some(docker_config),
        ..Default::default()
    });
    pull_config(&with_file, image, None).await.unwrap();
}

/// A hosts dir that sends 127.0.0.1:5002 over HTTPS with the test CA (or skip_verify).
fn tls_hosts(dir: &Path, tls: &str) -> PathBuf {
    let hosts = dir.join("hosts");
    std::fs::create_dir_all(hosts.join("127.0.0.1:5002")).unwrap();
    std::fs::write(
        hosts.join("127.0.0.1:5002/hosts.toml"),
        format!("server = \"https://127.0.0.1:5002\"\n{tls}\n"),
    )
    .unwrap();
    hosts
}

#[tokio::test]
async fn bearer_token_auth_over_tls() {
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let ca = registry_dir().join("tls/ca.pem");
    let c = client(Some(tls_hosts(
        dir.path(),
        &format!("ca = {:?}", ca.to_str().unwrap()),
    )));
    let image = "127.0.0.1:5002/e2e-test-images/busybox:1.29-2";
    pull_config(&c, image, Some(&creds(USER, PASSWORD)))
        .await
        .unwrap();
    let refresh = Credentials {
        identity_token: REFRESH_TOKEN.into(),
        ..Default::default()
    };
    pull_config(&c, image, Some(&refresh)).await.unwrap();
    let err = pull_config(&c, image, Some(&creds(USER, "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let err = pull_config(&c, image, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    // Without the CA the certificate is refused; skip_verify accepts it.
    let dir2 = tempfile::tempdir().unwrap();
    let err = pull_config(
        &client(Some(tls_hosts(dir2.path(), ""))),
        image,
        Some(&creds(USER, PASSWORD)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let dir3 = tempfile::tempdir().unwrap();
    pull_config(
        &client(Some(tls_hosts(dir3.path(), "skip_verify = true"))),
        image,
        Some(&creds(USER, PASSWORD)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn mirrors_are_tried_in_order_and_upstream_only_if_listed() {
    require_registry();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("example.invalid");
    std::fs::create_dir_all(&hosts).unwrap();
    // A dead mirror first (port 1 refuses), then the working one.
    std::fs::write(
        hosts.join("hosts.toml"),
        "[host.\"http://127.0.0.1:1\"]\n  capabilities = [\"pull\", \"resolve\"]\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  [host.\"http://127.0.0.1:5000\".header]\n    x-longshore-test = \"mirror\"\n",
    )
    .unwrap();
    let c = client(Some(dir.path().to_path_buf()));
    pull_config(&c, "example.invalid/longshore-test/layers:latest", None)
        .await
        .unwrap();
    // A pull-only mirror cannot resolve tags, and there is no upstream to fall back to.
    std::fs::write(
        hosts.join("hosts.toml"),
        "[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\"]\n",
    )
    .unwrap();
    let err = pull_config(&c, "example.invalid/longshore-test/layers:latest", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    // ... but it serves content by digest.
    let direct = Reference::parse("127.0.0.1:5000/longshore-test/layers:latest").unwrap();
    let digest = client(None)
        .session(&direct, None)
        .unwrap()
        .resolve(&direct)
        .await
        .unwrap()
        .digest;
    pull_config(
        &c,
        &format!("example.invalid/longshore-test/layers@{digest}"),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn unusable_manifests_and_configs_are_invalid_content() {
    require_registry();
    let c = client(None);
    let err = pull_config(
        &c,
        "127.0.0.1:5000/longshore-test/hostile-badmanifest:latest",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
    let r = Reference::parse("127.0.0.1:5000/longshore-test/hostile-size:latest").unwrap();
    let session = c.session(&r, None).unwrap();
    let resolved = session.pull_manifest(&r, &amd64()).await.unwrap();
    let err = session
        .fetch_blob_bytes(&resolved.image.layers[0], 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidContent, "{err}");
}
