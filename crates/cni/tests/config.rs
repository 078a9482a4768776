//! Readiness follows the config directory: no config, a broken one, a missing plugin, a
//! fixed one; all seen by the same `Cni`, without a restart.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use std::fs;
use std::path::PathBuf;

use longshore_cni::{
    Cni, CniConfig, Error, PodNetwork, REASON_INVALID_CONFIG, REASON_NO_CONFIG,
    REASON_PLUGIN_NOT_FOUND,
};

const PLUGIN_DIR: &str = "/usr/lib/cni";

fn conflist(bridge_type: &str, ipam_type: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0", "name": "lstest-status",
        "plugins": [
            {"type": bridge_type, "bridge": "lsb-status", "ipam": {"type": ipam_type}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

#[tokio::test]
async fn status_follows_the_config_dir_without_a_restart() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("net.d");
    let cni = Cni::new(CniConfig {
        conf_dir: conf_dir.clone(),
        bin_dirs: vec![PathBuf::from(PLUGIN_DIR)],
        cache_dir: dir.path().join("cache"),
    })
    .unwrap();

    // The directory does not even exist yet.
    let s = cni.status();
    assert!(!s.ready);
    assert_eq!(s.reason, REASON_NO_CONFIG);
    assert!(s.message.contains("net.d"), "{s:?}");

    fs::create_dir(&conf_dir).unwrap();
    assert_eq!(cni.status().reason, REASON_NO_CONFIG);

    let file = conf_dir.join("10-test.conflist");
    fs::write(
        &file,
        "{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [",
    )
    .unwrap();
    let s = cni.status();
    assert!(!s.ready);
    assert_eq!(s.reason, REASON_INVALID_CONFIG);
    assert!(s.message.contains("10-test.conflist"), "{s:?}");
    assert!(
        s.message.contains("EOF while parsing"),
        "parse error missing: {s:?}"
    );

    // Setup refuses with the same reason, before running any plugin.
    let pod = PodNetwork {
        id: "statustest".into(),
        netns_path: "/proc/self/ns/net".into(),
        ..Default::default()
    };
    match cni.setup(&pod).await {
        Err(Error::NotReady { reason, message }) => {
            assert_eq!(reason, REASON_INVALID_CONFIG);
            assert!(message.contains("EOF while parsing"));
        }
        other => panic!("unexpected {other:?}"),
    }

    fs::write(&file, conflist("bridge", "host-local")).unwrap();
    let s = cni.status();
    assert!(s.ready, "{s:?}");
    assert!(s.reason.is_empty() && s.message.is_empty());

    fs::write(&file, conflist("no-such-plugin", "host-local")).unwrap();
    let s = cni.status();
    assert_eq!(s.reason, REASON_PLUGIN_NOT_FOUND);
    assert!(s.message.contains("no-such-plugin"), "{s:?}");

    fs::write(&file, conflist("bridge", "no-such-ipam")).unwrap();
    assert!(cni.status().message.contains("no-such-ipam"));

    fs::write(&file, conflist("bridge", "host-local")).unwrap();
    assert!(cni.status().ready);
    fs::remove_file(&file).unwrap();
    assert_eq!(cni.status().reason, REASON_NO_CONFIG);
}

#[tokio::test]
async fn a_single_conf_makes_it_ready_and_bad_requests_are_refused() {
    longshore_testkit::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("net.d");
    fs::create_dir(&conf_dir).unwrap();
    let conf =
        r#"{"cniVersion":"0.4.0","name":"single","type":"bridge","ipam":{"type":"host-local"}}"#;
    fs::write(conf_dir.join("20-single.conf"), conf).unwrap();
    fs::write(
        conf_dir.join("99-loopback.conf"),
        r#"{"cniVersion":"0.3.1","name":"lo","type":"loopback"}"#,
    )
    .unwrap();
    let cni = Cni::new(CniConfig {
        conf_dir,
        bin_dirs: vec![PathBuf::from(PLUGIN_DIR)],
        cache_dir: dir.path().join("cache"),
    })
    .unwrap();
    assert!(cni.status().ready, "{:?}", cni.status());

    let bad_ns = PodNetwork {
        id: "abc".into(),
        netns_path: dir.path().join("no-such-netns"),
        ..Default::default()
    };
    assert!(matches!(cni.setup(&bad_ns).await, Err(Error::Netns { .. })));
    let bad_id = PodNetwork {
        id: "../etc".into(),
        netns_path: "/proc/self/ns/net".into(),
        ..Default::default()
    };
    assert!(matches!(
        cni.setup(&bad_id).await,
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        cni.teardown(&bad_id).await,
        Err(Error::InvalidName { .. })
    ));
    // Nothing was ever set up for this sandbox: teardown has nothing to do.
    let never = PodNetwork {
        id: "never".into(),
        ..Default::default()
    };
    cni.teardown(&never).await.unwrap();
}
