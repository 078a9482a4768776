//! Single-use, expiring tokens that stand for a CRI request, like kubelet's request cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::error::StreamingError;
use crate::requests::{AttachRequest, ExecRequest, PortForwardRequest};

/// Random bytes per token: 192 bits, above the 128 an unguessable URL needs.
const TOKEN_BYTES: usize = 24;
/// kubelet refuses new requests beyond this many outstanding ones.
const MAX_IN_FLIGHT: usize = 1000;

/// A request waiting for its URL to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CachedRequest {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

struct Entry {
    request: CachedRequest,
    expires: Instant,
}

/// Token → request, each usable once before it expires.
pub(crate) struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `request` under a fresh random token and returns the token.
    pub fn insert(&self, request: CachedRequest) -> Result<String, StreamingError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, e| e.expires > now);
        if entries.len() >= MAX_IN_FLIGHT {
            return Err(StreamingError::TooManyRequests(entries.len()));
        }
        entries.insert(
            token.clone(),
            Entry {
                request,
                expires: now + self.ttl,
            },
        );
        Ok(token)
    }

    /// Removes and returns the request for `token` if it exists and has not expired.
    pub fn consume(&self, token: &str) -> Option<CachedRequest> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.remove(token)?;
        (entry.expires > Instant::now()).then_some(entry.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf() -> CachedRequest {
        CachedRequest::PortForward(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            ports: vec![],
        })
    }

    #[test]
    fn tokens_are_single_use_and_random() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let a = cache.insert(pf()).unwrap();
        let b = cache.insert(pf()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(cache.consume(&a), Some(pf()));
        assert_eq!(cache.consume(&a), None);
        assert_eq!(cache.consume("nope"), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a test thread, not an async worker
    fn tokens_expire() {
        let cache = TokenCache::new(Duration::from_millis(1));
        let a = cache.insert(pf()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.consume(&a), None);
    }

    #[test]
    fn in_flight_is_capped() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for _ in 0..MAX_IN_FLIGHT {
            cache.insert(pf()).unwrap();
        }
        assert!(matches!(
            cache.insert(pf()),
            Err(StreamingError::TooManyRequests(_))
        ));
    }
}
