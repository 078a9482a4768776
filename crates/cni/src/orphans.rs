//! Plugin processes that outlived the runtime that started them: a daemon killed during ADD
//! leaves its plugins running, reparented to init. Tearing the pod down before they finish
//! would free an address that the still-running ADD then takes again, so a restarted runtime
//! waits for them first.

use std::time::{Duration, Instant};

/// PIDs of CNI plugin processes working for `container_id` (found by the `CNI_CONTAINERID`
/// their runtime put in their environment).
pub fn plugins_running_for(container_id: &str) -> Vec<i32> {
    let needle = format!("CNI_CONTAINERID={container_id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Waits (polling every 50 ms) until no plugin works for `container_id` any more, for at most
/// `within`. Returns whether they all finished.
pub async fn wait_for_plugins(container_id: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if plugins_running_for(container_id).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finds_a_process_by_its_cni_environment() {
        let id = format!("orphan-test-{}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("CNI_CONTAINERID", &id)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(plugins_running_for(&id), vec![pid]);
        assert!(!wait_for_plugins(&id, Duration::from_millis(100)).await);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(wait_for_plugins(&id, Duration::from_secs(5)).await);
    }
}
