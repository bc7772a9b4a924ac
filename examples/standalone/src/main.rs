//! `ip-monitor`: run the monitor in the foreground, or manage one embedded in another
//! process through the same store (`status`, `stop`, `start`, `history`).
//!
//! Run: `cargo run -p ip-monitor-standalone -- [--config PATH] COMMAND` (see `--help`).
//! Exit codes: 0 ok, 1 the check (or another operation) failed, 2 bad configuration or usage.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ip_monitor_core::DesiredState;

use ip_monitor_standalone::config::Settings;
use ip_monitor_standalone::logfile::{LogFile, Rotation};

mod commands;

use commands::{Failure, Outcome};

#[derive(Parser)]
#[command(
    name = "ip-monitor",
    version,
    about = "Tell staff the new entry URL when the server's public IP address changes",
    after_help = "Exit codes: 0 ok, 1 the check or another operation failed, 2 bad configuration or usage.\n\
                  Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more."
)]
struct Cli {
    /// Configuration file [default: ./ip-monitor.toml if present, else built-in defaults]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr (and in the log file)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also write the log to this file, rotated daily [default: [log] file, if set]
    #[arg(long, global = true, value_name = "PATH")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the monitor in the foreground until SIGINT or SIGTERM
    Run,
    /// Show the state of the monitor(s) using this store
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Resume every monitor on this store (sets the desired state)
    Start,
    /// Pause every monitor on this store (sets the desired state)
    Stop,
    /// Check once now in this process; record and deliver if the address changed
    Check {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show who would receive what; with --force, send a test notice to everyone
    Test {
        /// Really send, through the outbox (parallelism, retries)
        #[arg(long)]
        force: bool,
        /// The address to announce [default: the detected address]
        #[arg(long, value_name = "ADDR")]
        ip: Option<IpAddr>,
    },
    /// Requeue the failed deliveries of the latest change and send them (after fixing the relay)
    Retry,
    /// Recorded changes, newest first
    History {
        /// How many
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Write notice.eml, notice.html and qr.png into a directory
    Preview {
        /// The directory
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The address to announce [default: the detected address]
        #[arg(long, value_name = "ADDR")]
        ip: Option<IpAddr>,
    },
    /// The active recipients
    Recipients {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread drives every session and check; the store's calls run on tokio's blocking
    // threads. A fan-out is faster so than with a worker per core handing tasks to each
    // other (8,450 against 7,870 msg/s at 2,000 recipients, docs/performance.md).
    // The blocking threads outlive the heartbeat's period (10 s by default): an idle monitor
    // does not create and end a thread for every store call.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(120))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let loaded = {
        let _in_runtime = runtime.enter();
        Settings::load(cli.config.as_deref())
            .map_err(Failure::from)
            .and_then(|settings| init_logging(&cli, &settings).map(|()| settings))
    };
    match loaded.and_then(|settings| runtime.block_on(dispatch(cli, settings))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr, and to the log file when `--log-file` or `[log] file` names one: the
/// same lines (without colours in the file). `run` logs from `info`, the other commands
/// from `warn`; `RUST_LOG` overrides both.
fn init_logging(cli: &Cli, settings: &Settings) -> Result<(), Failure> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let default = match cli.command {
        Command::Run => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let file = match (&cli.log_file, &settings.log) {
        (Some(path), log) => Some((
            "--log-file",
            path.clone(),
            log.as_ref().map_or(Rotation::Daily, |l| l.rotation),
            log.as_ref().map_or(7, |l| l.keep),
        )),
        (None, Some(log)) => Some(("log.file", log.file.clone(), log.rotation, log.keep)),
        (None, None) => None,
    };
    let file = match file {
        None => None,
        Some((key, path, rotation, keep)) => {
            Some(LogFile::open(&path, rotation, keep).map_err(|e| {
                Failure::Config(settings.error(
                    key,
                    format!("cannot open the log file {}: {e}", path.display()),
                ))
            })?)
        }
    };
    // One formatter writes each line to both, so the file holds exactly what stderr shows
    // (without colours when there is a file).
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = match file {
        Some(f) => BoxMakeWriter::new(std::io::stderr.and(f)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn dispatch(cli: Cli, settings: Settings) -> Outcome {
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    if !settings.from_file {
        tracing::warn!(
            "no configuration file: built-in defaults (SQLite ./ip-monitor.db, public sources, messages into ./outbox, no recipients)"
        );
        tracing::warn!(
            "next: copy examples/standalone/ip-monitor.example.toml to ./ip-monitor.toml, set [smtp] to email the notices and [recipients] to choose who gets them"
        );
    }
    match cli.command {
        Command::Run => commands::run(&settings).await,
        Command::Status { json } => commands::status(&settings, json).await,
        Command::Start => commands::set_desired(&settings, DesiredState::Running).await,
        Command::Stop => commands::set_desired(&settings, DesiredState::Paused).await,
        Command::Check { json } => commands::check(&settings, json).await,
        Command::Test { force, ip } => commands::test(&settings, force, ip).await,
        Command::Retry => commands::retry(&settings).await,
        Command::History { limit, json } => commands::history(&settings, limit, json).await,
        Command::Preview { out, ip } => commands::preview(&settings, &out, ip).await,
        Command::Recipients { json } => commands::recipients_cmd(&settings, json).await,
    }
}
