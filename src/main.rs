//! The `carbonhound` command: `serve` (the default), `check-config`, and tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// carbon-cache + graphite-web + Hound in one binary.
#[derive(Parser)]
#[command(name = "carbonhound", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: carbon listeners, whisper storage, the render API, alerting.
    Serve {
        /// TOML settings file; embedded defaults and CARBONHOUND_* variables otherwise.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check the settings and storage rule files, then exit.
    CheckConfig {
        /// TOML settings file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => match carbonhound::config::Settings::load(config.as_deref()) {
            Err(e) => Err(e.to_string()),
            Ok(settings) => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(carbonhound::server::serve(settings))),
        },
        Command::CheckConfig { config } => carbonhound::server::check_config(config.as_deref()).map(|m| println!("{m}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbonhound: {e}");
            ExitCode::FAILURE
        }
    }
}
