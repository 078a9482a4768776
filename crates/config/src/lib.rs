//! Longshore configuration (filled in next).
