//! Version strings reported by `longshore version` and the CRI `Version` RPC.

/// The runtime's name as CRI reports it.
pub const RUNTIME_NAME: &str = "longshore";
/// The CRI API version this runtime speaks.
pub const CRI_API_VERSION: &str = "v1";
/// The version of the kubelet-facing API (the `version` field of `VersionResponse`).
pub const KUBELET_API_VERSION: &str = "0.1.0";
/// Longshore's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Multi-line version text for `longshore version`.
pub fn long_version() -> String {
    format!(
        "longshore {VERSION}\ncommit: {}\nCRI API: {CRI_API_VERSION} (k8s.io/cri-api v0.36.3)\nrustc target: {}",
        env!("LONGSHORE_GIT_COMMIT"),
        std::env::consts::ARCH
    )
}
