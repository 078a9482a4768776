//! CRI's `unified` map: v2 files written verbatim, after checking each key names a file in the
//! cgroup directory and nothing else.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fs::{self, FsError};

/// A `unified` entry that was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnifiedError {
    /// The key could escape the cgroup directory or is not a file name.
    #[error("unified key {0:?} is not a cgroup file name")]
    BadKey(String),
    /// The kernel refused the value (or has no such file).
    #[error("unified key {key:?}: {source}")]
    Fs {
        /// The key.
        key: String,
        /// The write that failed.
        source: FsError,
    },
}

/// Check every key, then write each value to the file of that name.
pub(crate) fn apply(dir: &Path, unified: &BTreeMap<String, String>) -> Result<(), UnifiedError> {
    if let Some(bad) = unified.keys().find(|k| !valid_key(k)) {
        return Err(UnifiedError::BadKey(bad.clone()));
    }
    for (key, value) in unified {
        fs::write(&dir.join(key), value).map_err(|source| UnifiedError::Fs {
            key: key.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A plain file name: not empty, no `/`, no `..`, no NUL.
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains('/')
        && !key.contains("..")
        && !key.contains('\0')
        && key != "."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(valid_key("memory.high"));
        assert!(valid_key("io.max"));
        for bad in [
            "",
            ".",
            "..",
            "../memory.max",
            "a/b",
            "/memory.max",
            "memory..max",
            "a\0b",
        ] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
