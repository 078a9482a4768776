//! The `longshore` command: the daemon, `pod-init` for pods with a shared PID namespace and
//! `pod-userns` for pods with their own user namespace.
//!
//! `serve` runs the CRI daemon. `pod-init` is the small PID 1 of a pod's shared PID namespace; it
//! is dispatched before any async runtime or logging is set up, so it stays small and
//! single-threaded. Each container's monitor is the separate `longshore-monitor` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "longshore",
    version,
    about = "A Kubernetes CRI container runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the CRI daemon.
    Serve(longshore::server::ServeArgs),
    /// Print version information.
    Version,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the full default configuration, with comments.
    Default,
    /// Check a configuration file and print the result as the daemon would use it.
    Check {
        /// The file to check.
        #[arg(default_value = longshore_config::DEFAULT_CONFIG_PATH)]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    // The helper processes take over before clap and tokio: they must stay lean.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) == Some("pod-init") {
        return exit_code(longshore_namespaces::pod_init_main());
    }
    if args.get(1).and_then(|a| a.to_str()) == Some("pod-userns") {
        let rest: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return exit_code(longshore_namespaces::pod_userns_main(&rest));
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match longshore::server::serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("longshore: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Version => {
            println!("{}", longshore::version::long_version());
            ExitCode::SUCCESS
        }
        Command::Config {
            what: ConfigCommand::Default,
        } => {
            print!("{}", longshore_config::DEFAULT_CONFIG);
            ExitCode::SUCCESS
        }
        Command::Config {
            what: ConfigCommand::Check { file },
        } => match longshore_config::Config::load(&file, true) {
            Ok(config) => {
                println!("{config:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("longshore: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
