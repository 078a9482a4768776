//! The `longshore-bench` command; everything is in the library.

use std::process::ExitCode;

use clap::Parser;

/// Measure CRI runtimes side by side (Longshore, containerd, CRI-O) over their sockets.
#[derive(Parser)]
#[command(name = "longshore-bench", version)]
struct Cli {
    #[command(flatten)]
    args: longshore_bench::BenchArgs,
}

fn main() -> ExitCode {
    match longshore_bench::run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("longshore-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
