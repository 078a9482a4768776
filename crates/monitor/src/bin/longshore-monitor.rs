//! The `longshore-monitor` binary the daemon starts once per container.

fn main() {
    std::process::exit(longshore_monitor::monitor_main(std::env::args_os().skip(1)));
}
