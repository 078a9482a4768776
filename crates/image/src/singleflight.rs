//! Per-key async locks: concurrent pulls of the same image or layer run one at a time, and the
//! later ones find the work done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Async mutexes by key, freed when nobody holds or waits for them.
#[derive(Default)]
pub(crate) struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// Holds a key's lock until dropped.
pub(crate) struct KeyGuard {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl KeyedLocks {
    /// Wait for and take the lock for `key`.
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, weak| weak.strong_count() > 0);
            match map.get(key).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_string(), Arc::downgrade(&l));
                    l
                }
            }
        };
        KeyGuard {
            _guard: lock.lock_owned().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serializes_same_key_only() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("a").await;
        let _b = locks.lock("b").await; // another key is free
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.lock("a").await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
    }
}
