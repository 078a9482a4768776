//! Reading and writing cgroupfs files, with errors that name the file and the value.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A cgroupfs read or write that failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The kernel refused a value.
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A file's content did not have the expected form.
    #[error("cannot parse {}: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A cgroup directory could not be made.
    #[error("cannot create cgroup {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A cgroup directory could not be listed or removed.
    #[error("cannot remove cgroup {}: {source}", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
}

impl FsError {
    /// The errno of the underlying failure, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            FsError::Read { source, .. }
            | FsError::Write { source, .. }
            | FsError::Create { source, .. }
            | FsError::Remove { source, .. } => source.raw_os_error(),
            FsError::Parse { .. } => None,
        }
    }
}

/// Read a whole cgroupfs file.
pub(crate) fn read(path: &Path) -> Result<String, FsError> {
    fs::read_to_string(path).map_err(|source| FsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file that may be absent (a controller feature the kernel lacks): `None` then.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, FsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write `value` to an existing cgroupfs file in one `write(2)`, as the kernel expects.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), FsError> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    let result = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| FsError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Parse a file's content with `parse`, turning its complaint into an error naming the file.
pub(crate) fn parse_with<T>(
    path: &Path,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, FsError> {
    parse(text).map_err(|detail| FsError::Parse {
        path: path.to_path_buf(),
        detail,
    })
}

/// Read a file holding one unsigned number.
pub(crate) fn read_u64(path: &Path) -> Result<u64, FsError> {
    let text = read(path)?;
    parse_with(path, &text, crate::parse::single_u64)
}

/// Read a file holding a limit: a number, or `max` (v2) / a near-2^63 value (v1) for none.
pub(crate) fn read_limit(path: &Path) -> Result<Option<u64>, FsError> {
    let text = read(path)?;
    parse_with(path, &text, crate::parse::limit)
}

/// Read a flat-keyed file (`key value` lines) and return the value of `key` (0 when absent).
pub(crate) fn read_keyed(path: &Path, key: &str) -> Result<u64, FsError> {
    let text = read(path)?;
    Ok(crate::parse::keyed(&text, key).unwrap_or(0))
}
