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
    /// Alert rules: check them, or preview the mail one would send.
    Alerts {
        #[command(subcommand)]
        action: AlertsCommand,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// Read every rule file of [alerting].rules_dir; print each problem as path:line:column.
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
        /// Which mail: alert or recovery (default: by the rule's current state).
        #[arg(long, value_parser = ["alert", "recovery"])]
        kind: Option<String>,
    },
}

fn alerts_check(config: Option<&std::path::Path>) -> Result<(), String> {
    let settings = carbonhound::config::Settings::load(config).map_err(|e| e.to_string())?;
    let cfg = carbonhound::alert::AlertConfig::from_settings(&settings);
    let set = cfg.load_rules().map_err(|e| format!("alert rules in {} have problems:\n{e}", cfg.rules_dir.display()))?;
    for r in &set.rules {
        println!("{}: {} ({} {} {}, {})", r.source, r.name, r.target, r.direction.as_str(), r.threshold, r.rule_type.as_str());
    }
    println!("{} alert rules in {} files OK ({})", set.rules.len(), set.files.len(), cfg.rules_dir.display());
    Ok(())
}

fn alerts_preview(config: Option<&std::path::Path>, name: &str, out: &std::path::Path, kind: Option<&str>) -> Result<(), String> {
    use carbonhound::alert::MailKind;
    let settings = carbonhound::config::Settings::load(config).map_err(|e| e.to_string())?;
    let rules = carbonhound::server::load_rules(&settings)?;
    let store = carbonhound::store::Store::open(&settings.whisper_dir(), rules, settings.cache.max_size, carbonhound::whisper::Preallocation::Sparse, 0)
        .map_err(|e| format!("cannot open data directory {}: {e}", settings.whisper_dir().display()))?;
    let kind = kind.map(|k| if k == "recovery" { MailKind::Recovery } else { MailKind::Alert });
    let p = carbonhound::alert::preview(&settings, &store, name, kind, carbonhound::store::unix_now())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let base = out.join(&p.rule.slug);
    let png_name = format!("{}.png", p.rule.slug);
    // The HTML names the graph by Content-ID; the file on disk points at the PNG beside it.
    let html = p.mail.html.replace(&format!("cid:{}", p.mail.cid), &png_name);
    let files = [("txt", p.mail.text.into_bytes()), ("html", html.into_bytes()), ("png", p.mail.png), ("eml", p.eml)];
    for (ext, bytes) in files {
        let path = base.with_extension(ext);
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!("\"{}\": {} now; this is its {} mail (subject \"{}\")", p.rule.name, p.status.as_str(), if p.kind == MailKind::Recovery { "recovery" } else { "alert" }, p.mail.subject);
    Ok(())
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
        Command::Alerts { action: AlertsCommand::Check { config } } => alerts_check(config.as_deref()),
        Command::Alerts { action: AlertsCommand::Preview { name, config, out, kind } } => alerts_preview(config.as_deref(), &name, &out, kind.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbonhound: {e}");
            ExitCode::FAILURE
        }
    }
}
