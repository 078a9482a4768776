//! PSI files of a v2 cgroup (`cpu.pressure`, `memory.pressure`, `io.pressure`). They exist in
//! every v2 cgroup when the kernel has PSI, so hybrid hosts read them from the cgroup2 mount.

use std::path::Path;

use crate::fs::{self, FsError};
use crate::parse;
use crate::stats::{Pressure, Psi};

/// CPU pressure.
const CPU_PRESSURE: &str = "cpu.pressure";
/// Memory pressure.
const MEMORY_PRESSURE: &str = "memory.pressure";
/// I/O pressure.
const IO_PRESSURE: &str = "io.pressure";

/// A PSI file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum PressureError {
    /// Unreadable or malformed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Read the three PSI files; `None` when none exists (PSI off, or `psi=0`).
pub(crate) fn stats(dir: &Path) -> Result<Option<Pressure>, PressureError> {
    let pressure = Pressure {
        cpu: read(dir, CPU_PRESSURE)?,
        memory: read(dir, MEMORY_PRESSURE)?,
        io: read(dir, IO_PRESSURE)?,
    };
    let any = pressure.cpu.is_some() || pressure.memory.is_some() || pressure.io.is_some();
    Ok(any.then_some(pressure))
}

fn read(dir: &Path, name: &str) -> Result<Option<Psi>, PressureError> {
    let path = dir.join(name);
    // With PSI compiled in but disabled at boot, the files exist and reads fail: EOPNOTSUPP.
    let text = match fs::read_optional(&path) {
        Ok(text) => text,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(text
        .map(|t| fs::parse_with(&path, &t, parse::psi))
        .transpose()?)
}
