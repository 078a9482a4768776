//! Standalone `pod-init`, the same code `longshore pod-init` runs; used by this crate's tests.

fn main() {
    std::process::exit(longshore_namespaces::pod_init_main());
}
