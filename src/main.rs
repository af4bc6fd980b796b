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
        /// Also read every whisper file's header under data_dir and list the files whose
        /// retentions differ from their storage-schemas.conf rule; exit status 1 if any does.
        #[arg(long)]
        data: bool,
    },
    /// Whisper file tools: info, fetch, dump, create, set-aggregation (as python3-whisper's).
    Whisper {
        #[command(subcommand)]
        command: carbonhound::cli::WhisperCommand,
    },
    /// Read a password from standard input (its first line) and print its argon2 hash, for
    /// `password_hash` of an `[[http.users]]` table.
    HashPassword,
    /// Alert rules: check them, preview the mail one would send, import Hound's.
    Alerts {
        #[command(subcommand)]
        action: AlertsCommand,
    },
    /// Silences of a running server (no mail from matching rules or series for a while):
    /// add, list, expire. Talks to its HTTP API.
    Silence {
        #[command(subcommand)]
        action: SilenceCommand,
        /// TOML settings file (for the default --url, from [http] listen).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// The server, e.g. http://127.0.0.1:8080 (default: [http] listen).
        #[arg(long, global = true)]
        url: Option<String>,
        /// An [http] auth_tokens entry, sent as a bearer token.
        #[arg(long, global = true)]
        token: Option<String>,
    },
    /// Metrics of a running server: delete (a pattern), rename (a metric or a subtree),
    /// stale (not updated for a while; --delete). Talks to its HTTP API, so its index,
    /// caches and tags follow at once.
    Metrics {
        #[command(subcommand)]
        action: carbonhound::cli::MetricsCommand,
        /// TOML settings file (for the default --url and --token).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// The server, e.g. http://127.0.0.1:8080 (default: [http] listen).
        #[arg(long, global = true)]
        url: Option<String>,
        /// A bearer token (default: the first [http] auth_tokens entry of the settings).
        #[arg(long, global = true)]
        token: Option<String>,
        /// Print a count instead of one line per metric.
        #[arg(long, short, global = true)]
        quiet: bool,
    },
}

#[derive(Subcommand)]
enum SilenceCommand {
    /// Silence a rule, series or labels for --duration or --until; prints the new id.
    Add {
        /// Rule name or slug.
        #[arg(long)]
        rule: Option<String>,
        /// Graphite glob over series names (e.g. 'web.*.cpu').
        #[arg(long)]
        series: Option<String>,
        /// key=value: the rule must have this label (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// How long, e.g. 2h, 30m, 1d (at most 90 days).
        #[arg(long, conflicts_with = "until", required_unless_present = "until")]
        duration: Option<String>,
        /// Until this time (epoch seconds).
        #[arg(long)]
        until: Option<i64>,
        /// Why.
        #[arg(long)]
        comment: String,
        /// Who.
        #[arg(long)]
        author: String,
    },
    /// List silences in force, then those ended in the last 7 days.
    List,
    /// End silence ID now.
    Expire {
        /// The silence's id (from add or list).
        id: u64,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Read every rule file of [alerting].rules_dir and evaluate each rule once against the
    /// whisper files; print each problem as path:line (a bad file, a rule that cannot be
    /// evaluated or matches no series) and exit non-zero if there is one.
    Check {
        /// TOML settings file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write the mail rule NAME would send now (NAME.txt, NAME.html, NAME.png, NAME.eml)
    /// without sending it. Reads the whisper files of data_dir.
    Preview {
        /// Rule name or its page slug.
        name: String,
        /// TOML settings file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Folder for the files (created if missing).
        #[arg(long, short, default_value = ".")]
        out: PathBuf,
        /// Which mail: alert, recovery or error (default: the one a check would send now).
        #[arg(long, value_parser = ["alert", "recovery", "error"])]
        kind: Option<String>,
    },
    /// Convert a Hound config.json: its Alerts become a rule file (--out), and the
    /// carbonhound.toml settings to add (email_from, email_to, interval, graphite_url) are
    /// printed on stdout. Nothing is written when any alert is refused.
    ImportHound {
        /// Hound's JSON configuration file.
        config_json: PathBuf,
        /// The rule file to write (the default is in the default [alerting].rules_dir).
        #[arg(long, short, default_value = "alerts.d/hound.toml")]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `carbonhound serve`: settings first (a bad one stops here), then the runtime.
fn serve(config: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let settings = carbonhound::config::Settings::load(config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(carbonhound::server::serve(settings))?;
    Ok(())
}

/// `carbonhound check-config [--data]`: `Ok(false)` when `--data` found mismatched files.
fn check_config(
    config: Option<&std::path::Path>,
    data: bool,
) -> Result<bool, Box<dyn std::error::Error>> {
    println!("{}", carbonhound::server::check_config(config)?);
    if !data {
        return Ok(true);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let check = carbonhound::server::check_data(config, &mut out)?;
    std::io::Write::flush(&mut out)?;
    Ok(check.mismatched == 0)
}

/// `carbonhound hash-password`: the password from stdin (so it stays out of the shell
/// history and `ps`), its PHC string on stdout.
fn hash_password() -> Result<(), Box<dyn std::error::Error>> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    println!("{}", carbonhound::api::hash_password(password)?);
    Ok(())
}

/// `carbonhound silence …`: prints the server's answer.
fn silence(
    action: SilenceCommand,
    config: Option<PathBuf>,
    server: carbonhound::alert::cli::silence::Server,
) -> Result<(), Box<dyn std::error::Error>> {
    use carbonhound::alert::cli::silence;
    let config = config.as_deref();
    let out = match action {
        SilenceCommand::Add {
            rule,
            series,
            labels,
            duration,
            until,
            comment,
            author,
        } => silence::add(
            config,
            &server,
            &silence::AddArgs {
                rule,
                series,
                labels,
                duration,
                until,
                comment,
                author,
            },
        )?,
        SilenceCommand::List => silence::list(config, &server)?,
        SilenceCommand::Expire { id } => silence::expire(config, &server, id)?,
    };
    println!("{out}");
    Ok(())
}

fn main() -> ExitCode {
    carbonhound::malloc::limit_arenas();
    let cli = Cli::parse();
    init_logging();
    // Every command's error is shown the same way: `carbonhound: <message>`, exit status 1.
    let result: Result<(), Box<dyn std::error::Error>> =
        match cli.command.unwrap_or(Command::Serve { config: None }) {
            Command::Serve { config } => serve(config),
            Command::HashPassword => hash_password(),
            Command::Whisper { command } => return carbonhound::cli::run_whisper(command),
            Command::CheckConfig { config, data } => match check_config(config.as_deref(), data) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            },
            Command::Alerts {
                action: AlertsCommand::Check { config },
            } => carbonhound::alert::cli::check(config.as_deref())
                .map(|m| println!("{m}"))
                .map_err(Into::into),
            Command::Alerts {
                action:
                    AlertsCommand::Preview {
                        name,
                        config,
                        out,
                        kind,
                    },
            } => carbonhound::alert::cli::preview(config.as_deref(), &name, &out, kind.as_deref())
                .map(|m| println!("{m}"))
                .map_err(Into::into),
            Command::Alerts {
                action:
                    AlertsCommand::ImportHound {
                        config_json,
                        out,
                        force,
                    },
            } => carbonhound::alert::cli::import_hound(&config_json, &out, force)
                .map(|m| {
                    print!("{}", m.settings);
                    eprintln!("{}", m.report);
                })
                .map_err(Into::into),
            Command::Silence {
                action,
                config,
                url,
                token,
            } => silence(
                action,
                config,
                carbonhound::alert::cli::silence::Server { url, token },
            ),
            Command::Metrics {
                action,
                config,
                url,
                token,
                quiet,
            } => carbonhound::cli::run_metrics(
                &action,
                config.as_deref(),
                &carbonhound::cli::MetricsServer { url, token, quiet },
            )
            .map(|m| println!("{m}"))
            .map_err(Into::into),
        };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbonhound: {e}");
            ExitCode::FAILURE
        }
    }
}
