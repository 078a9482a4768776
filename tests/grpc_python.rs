//! The daemon driven by Python `grpcio` (gRPC's C core), which sends the unix socket's path as
//! the HTTP/2 `:authority`, as well as by the project's own (tonic) client on the same socket:
//! unary calls, a server stream, an error status, a pod's whole life.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]

mod common;

use std::process::Command;

use common::TestDaemon;
use longshore::api::*;

#[tokio::test(flavor = "multi_thread")]
async fn python_grpcio_drives_a_pod_through_its_life() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    let image = d.pull(common::BUSYBOX).await;
    let repo = env!("CARGO_MANIFEST_DIR");
    let socket = d.socket.clone();
    let log_dir = d.log_dir.join("py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(format!("{repo}/tests/grpc_python/client.py"))
            .arg(format!("{repo}/proto"))
            .arg(&socket)
            .arg(common::BUSYBOX)
            .arg(&log_dir)
            .output()
            .expect("python3 runs (scripts/setup-test-host.sh installs grpcio)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client.py failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        d.daemon_log()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["version"], "longshore");
    assert_eq!(seen["image"], image.as_str());
    assert_eq!(seen["exec"], serde_json::json!([0, "from python\n"]));
    assert_eq!(seen["state"], "CONTAINER_RUNNING");
    assert_eq!(seen["pods"], 1);
    assert_eq!(seen["unknown"], "NOT_FOUND");
    assert_eq!(
        seen["events"],
        serde_json::json!(["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT"])
    );
    // The project's own client keeps working beside it, on a connection of its own.
    let version = d
        .client
        .runtime
        .version(VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "longshore");
    d.assert_nothing_left();
}
