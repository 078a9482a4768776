//! Standalone `pod-userns`, the same code `longshore pod-userns` runs; used by this crate's tests.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match args.first().map(String::as_str) {
        Some("pod-userns") => &args[1..],
        _ => &args[..],
    };
    std::process::exit(longshore_namespaces::pod_userns_main(args));
}
