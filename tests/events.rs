//! GetContainerEvents through the real daemon: two concurrent subscribers each see a
//! container's four lifecycle events in order, with the pod's and container's status; and a
//! daemon with a subscriber still attached stops promptly on SIGTERM.
//!
//! Needs root and the test registry (`scripts/setup-test-host.sh`).

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::time::{Duration, Instant};

use common::{BUSYBOX, TestDaemon};
use longshore::api::*;
use longshore::client::CriClient;
use tonic::Streaming;

async fn subscribe(d: &TestDaemon) -> Streaming<ContainerEventResponse> {
    // A connection of its own, as a second kubelet-like client would have.
    let mut client = CriClient::connect(&d.socket).await.unwrap();
    client
        .runtime
        .get_container_events(GetEventsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Events for `id` until its DELETED event (at most 60 s).
async fn events_of(
    stream: &mut Streaming<ContainerEventResponse>,
    id: &str,
) -> Vec<ContainerEventResponse> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|e: &ContainerEventResponse| {
        e.container_event_type != ContainerEventType::ContainerDeletedEvent as i32
    }) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no DELETED event; got {out:#?}"))
            .unwrap()
            .expect("stream ended early");
        if event.container_id == id {
            out.push(event);
        }
    }
    out
}

fn state_in(event: &ContainerEventResponse, id: &str) -> Option<i32> {
    event
        .containers_statuses
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.state)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_subscribers_see_a_containers_life_in_order() {
    longshore_testkit::require_root!();
    let mut d = TestDaemon::start().await;
    d.pull(BUSYBOX).await;
    let mut first = subscribe(&d).await;
    let mut second = subscribe(&d).await;

    let pod = d.pod_config("events");
    let pod_id = d.run_pod(&pod).await;
    let id = d
        .run_container(
            &pod_id,
            &pod,
            TestDaemon::container_config("life", &["sleep", "3600"]),
        )
        .await;
    d.client
        .runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    d.client
        .runtime
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();

    let (a, b) = tokio::join!(events_of(&mut first, &id), events_of(&mut second, &id));
    for events in [&a, &b] {
        let kinds: Vec<i32> = events.iter().map(|e| e.container_event_type).collect();
        let expected = [
            ContainerEventType::ContainerCreatedEvent,
            ContainerEventType::ContainerStartedEvent,
            ContainerEventType::ContainerStoppedEvent,
            ContainerEventType::ContainerDeletedEvent,
        ]
        .map(|k| k as i32);
        assert_eq!(kinds, expected, "{events:#?}");
        assert!(
            events
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at),
            "{events:#?}"
        );
        for e in events.iter() {
            assert_eq!(
                e.pod_sandbox_status.as_ref().map(|s| s.id.as_str()),
                Some(pod_id.as_str()),
                "{e:#?}"
            );
        }
        assert_eq!(
            state_in(&events[1], &id),
            Some(ContainerState::ContainerRunning as i32),
            "{:#?}",
            events[1]
        );
        assert_eq!(
            state_in(&events[2], &id),
            Some(ContainerState::ContainerExited as i32),
            "{:#?}",
            events[2]
        );
    }
    let same = |e: &[ContainerEventResponse]| {
        e.iter()
            .map(|x| (x.container_event_type, x.created_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(same(&a), same(&b), "both subscribers saw the same events");

    d.remove_all_pods().await;
    d.assert_nothing_left();
}

/// PIDs of processes whose command line contains `needle`.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_does_not_hold_the_daemon_at_shutdown() {
    longshore_testkit::require_root!();
    let d = TestDaemon::start().await;
    let mut stream = subscribe(&d).await;
    let config = d.config_file.to_string_lossy().to_string();
    let stopping = std::thread::spawn(move || {
        let mut d = d;
        d.stop_process(libc::SIGTERM);
        d
    });
    let ended = tokio::time::timeout(Duration::from_secs(15), stream.message()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stopping.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !stopping.is_finished() {
        // Our own daemon hung: kill it by pid so the harness can clean up, then fail.
        for pid in pids_mentioning(&config) {
            // SAFETY: kill(2) on the daemon this test started (its command line names our config).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = stopping.join();
        panic!("the daemon did not stop within 15 s of SIGTERM with an events subscriber attached");
    }
    let message = ended.expect("the events stream stayed open after SIGTERM");
    assert!(
        !matches!(message, Ok(Some(_))),
        "no event was expected: {message:?}"
    );
    drop(stopping.join().unwrap());
}
