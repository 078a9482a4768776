//! The monitor as its own binary, for the crate's tests; the daemon runs the same code as
//! `longshore monitor`.

fn main() {
    std::process::exit(longshore_monitor::monitor_main(std::env::args_os().skip(1)));
}
