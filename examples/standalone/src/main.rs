//! `ip-monitor`: run the monitor in the foreground, or manage one embedded in another
//! process through the same store (`status`, `stop`, `start`, `history`).
//!
//! Run: `cargo run -p ip-monitor-standalone -- [--config PATH] COMMAND` (see `--help`).
//! Exit codes: 0 ok, 1 the check (or another operation) failed, 2 bad configuration or usage.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Parser, Subcommand, ValueEnum};
use ip_monitor_core::web::Dashboard;
use ip_monitor_core::{
    ChannelRouter, CheckReport, DeliveryState, DesiredState, Error as CoreError, Event,
    FallbackNotifier, Monitor, Notice, Notifier, Recipient, RecipientList, Recipients, StateStore,
    StaticRecipients, StatusReport, WithChannels,
};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, SmtpNotifier};
use serde_json::{Value, json};

use ip_monitor_standalone::config::{ConfigError, NotifierSetting, RecipientsSetting, Settings};
use ip_monitor_standalone::logfile::{LogFile, Rotation};

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

/// Why a command failed, and its exit code.
enum Failure {
    Config(ConfigError),
    Failed(String),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

macro_rules! failed_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::Failed(e.to_string())
            }
        }
    )*};
}
failed_from!(
    CoreError,
    ip_monitor_core::StoreError,
    ip_monitor_core::RecipientsError,
    ip_monitor_core::NoticeError,
    ip_monitor_lettre::Error,
    serde_json::Error
);

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread drives every session and check; the store's calls run on tokio's blocking
    // threads. A fan-out is faster so than with a worker per core handing tasks to each
    // other (8,450 against 7,870 msg/s at 2,000 recipients, docs/performance.md).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
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
    if !settings.from_file {
        tracing::warn!(
            "no configuration file: built-in defaults (SQLite ./ip-monitor.db, public sources, messages into ./outbox, no recipients)"
        );
        tracing::warn!(
            "next: copy examples/standalone/ip-monitor.example.toml to ./ip-monitor.toml, set [smtp] to email the notices and [recipients] to choose who gets them"
        );
    }
    match cli.command {
        Command::Run => run(&settings).await,
        Command::Status { json } => status(&settings, json).await,
        Command::Start => set_desired(&settings, DesiredState::Running).await,
        Command::Stop => set_desired(&settings, DesiredState::Paused).await,
        Command::Check { json } => check(&settings, json).await,
        Command::Test { force, ip } => test(&settings, force, ip).await,
        Command::Retry => retry(&settings).await,
        Command::History { limit, json } => history(&settings, limit, json).await,
        Command::Preview { out, ip } => preview(&settings, &out, ip).await,
        Command::Recipients { json } => recipients_cmd(&settings, json).await,
    }
}

// ---- parts ---------------------------------------------------------------------------------

async fn store(s: &Settings) -> Result<DieselStore, Failure> {
    DieselStore::connect(&s.store_url)
        .await
        .map_err(|e| match e {
            ip_monitor_diesel::Error::InvalidUrl { .. }
            | ip_monitor_diesel::Error::Unsupported { .. } => {
                Failure::Config(s.error("store.url", e.to_string()))
            }
            other => Failure::Failed(other.to_string()),
        })
}

async fn recipients(s: &Settings, store: &DieselStore) -> Result<Arc<dyn Recipients>, Failure> {
    match &s.recipients {
        RecipientsSetting::Query {
            sql,
            database_url: None,
        } => Ok(Arc::new(DieselRecipients::new(store).query(sql.clone()))),
        _ => recipients_elsewhere(s).await,
    }
}

/// The recipients when they do not come from the store's database: a fixed list, or a
/// query on another database.
async fn recipients_elsewhere(s: &Settings) -> Result<Arc<dyn Recipients>, Failure> {
    Ok(match &s.recipients {
        RecipientsSetting::Query {
            sql,
            database_url: Some(url),
        } => Arc::new(
            DieselRecipients::connect(url)
                .await
                .map_err(|e| Failure::Failed(format!("recipients.database_url: {e}")))?
                .query(sql.clone()),
        ),
        RecipientsSetting::Static(list) => Arc::new(StaticRecipients::new(list.clone())),
        RecipientsSetting::Query {
            database_url: None, ..
        } => {
            return Err(Failure::Failed(
                "the recipients query runs on the store's database".to_owned(),
            ));
        }
    })
}

/// The email notifier, and the channels beside it.
fn notifier(s: &Settings) -> Arc<dyn Notifier> {
    let email = email_notifier(s);
    if s.channels.is_empty() && s.dns.is_empty() {
        return email;
    }
    let router = s
        .channels
        .iter()
        .fold(ChannelRouter::new(email), |router, (name, chat)| {
            router.channel(name.clone(), chat.clone())
        });
    let router = s.dns.iter().fold(router, |router, d| {
        router.channel(d.channel.clone(), Arc::clone(&d.notifier))
    });
    Arc::new(router)
}

/// The staff, then the chat channels and the DNS records: one delivery each per change.
fn with_channels(s: &Settings, people: Arc<dyn Recipients>) -> Arc<dyn Recipients> {
    if s.channels.is_empty() && s.dns.is_empty() {
        return people;
    }
    let names = s
        .channels
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(s.dns.iter().map(|d| d.channel.as_str()));
    Arc::new(WithChannels::new(people, names).expect("names checked with the configuration"))
}

fn email_notifier(s: &Settings) -> Arc<dyn Notifier> {
    match &s.notifier {
        NotifierSetting::Smtp { primary, fallback } if fallback.is_empty() => {
            Arc::new((**primary).clone())
        }
        NotifierSetting::Smtp { primary, fallback } => {
            let name = |n: &SmtpNotifier| format!("{}:{}", n.host(), n.port());
            let routes = fallback.iter().fold(
                FallbackNotifier::new(name(primary), (**primary).clone()),
                |routes, backup| routes.or(name(backup), backup.clone()),
            );
            Arc::new(routes)
        }
        NotifierSetting::Files(dir) => Arc::new(FileNotifier::new(dir.clone(), s.template.clone())),
    }
}

async fn monitor(s: &Settings) -> Result<(Monitor, DieselStore, Arc<dyn Recipients>), Failure> {
    let store = store(s).await?;
    let recipients = with_channels(s, recipients(s, &store).await?);
    let monitor = Monitor::builder(
        s.sources.clone(),
        store.clone(),
        Arc::clone(&recipients),
        notifier(s),
    )
    .config(s.monitor.clone())
    .build()
    .map_err(|e| match e {
        CoreError::Config { key, message } => Failure::Config(s.error(&key, message)),
        other => Failure::Failed(other.to_string()),
    })?;
    Ok((monitor, store, recipients))
}

fn warn_if_nobody(list: &RecipientList) {
    for r in &list.rejected {
        tracing::warn!("{r}");
    }
    if list.valid.is_empty() {
        tracing::warn!("no active recipients: changes are recorded but nobody is told");
    }
}

fn time(t: SystemTime) -> String {
    ip_monitor_core::report::rfc3339(t)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

// ---- commands ------------------------------------------------------------------------------

async fn run(s: &Settings) -> Outcome {
    let (monitor, store, recipients) = monitor(s).await?;
    match recipients.active().await {
        Ok(list) => warn_if_nobody(&list),
        Err(e) => tracing::warn!("{e}"),
    }
    // Bound before the loop starts: a port in use is a configuration error, not a monitor
    // that runs without the page it was asked to serve.
    let listener =
        match &s.server {
            Some(server) => Some(tokio::net::TcpListener::bind(server.listen).await.map_err(
                |e| {
                    s.error(
                        "server.listen",
                        format!("cannot listen on {}: {e}", server.listen),
                    )
                },
            )?),
            None => None,
        };
    let handle = monitor.spawn();
    // Subscribed before the loop first runs (this runtime has one thread): no change is missed.
    tokio::spawn(log_changes(handle.subscribe(), destination(s)));
    if let (Some(listener), Some(server)) = (listener, &s.server) {
        let addr = listener.local_addr().unwrap_or(server.listen);
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "the status page listens on {addr}, not a loopback address: whoever reaches it \
                 sees the addresses and the instances"
            );
        }
        let actions = if server.token.is_some() {
            "check and test actions need the token"
        } else {
            "check and test actions off (no [server] token_env)"
        };
        tracing::info!("status page on http://{addr}/ (/healthz, /metrics; {actions})");
        let mut dashboard = Dashboard::new(handle.clone());
        if let Some(token) = &server.token {
            dashboard = dashboard.token(token.clone());
        }
        tokio::spawn(ip_monitor_standalone::server::serve(listener, dashboard));
    }
    tracing::info!(store = %store.url(), "monitor running; stop with Ctrl-C or SIGTERM");
    // The status channel closes when the loop ends: on its own, that is a failure (a panic
    // in a part), and a supervisor (systemd's Restart=on-failure) should see it.
    let mut status = handle.watch_status();
    let ended = async { while status.changed().await.is_ok() {} };
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = ended => {
            let reason = match handle.shutdown().await {
                Ok(()) => "its loop ended".to_owned(),
                Err(e) => e.to_string(),
            };
            return Err(Failure::Failed(format!("the monitor stopped unexpectedly: {reason}")));
        }
    }
    tracing::info!("shutting down");
    handle.shutdown().await?;
    Ok(())
}

/// Where the notices go, in words.
fn destination(s: &Settings) -> String {
    match &s.notifier {
        NotifierSetting::Smtp { primary, fallback } => {
            let mut through = format!("by email through {}:{}", primary.host(), primary.port());
            for backup in fallback {
                through.push_str(&format!(", else {}:{}", backup.host(), backup.port()));
            }
            through
        }
        NotifierSetting::Files(dir) => format!(
            "as .eml files in {} (set [smtp] to email them)",
            dir.display()
        ),
    }
}

/// Log each recorded address with its entry URL and where its notice went.
async fn log_changes(mut events: tokio::sync::broadcast::Receiver<Event>, destination: String) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::Changed(c)) if c.deliveries == 0 => tracing::warn!(
                "recorded the {} address {}, entry URL {}: nobody to tell (set [recipients])",
                c.family,
                c.address,
                c.url
            ),
            Ok(Event::Changed(c)) => tracing::info!(
                "recorded the {} address {}, entry URL {}: notice to {} recipient(s) {destination}",
                c.family,
                c.address,
                c.url,
                c.deliveries
            ),
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn set_desired(s: &Settings, state: DesiredState) -> Outcome {
    let store = store(s).await?;
    store.set_desired_state(state).await?;
    println!(
        "desired state: {} (running monitors follow within {})",
        state.as_str(),
        humantime::format_duration(s.monitor.control_poll)
    );
    Ok(())
}

/// The SQLite file of the store, when the store is one and its file does not exist yet.
fn missing_store_file(s: &Settings) -> Option<&str> {
    let url = s.store_url.trim();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (path != ":memory:" && !std::path::Path::new(path).exists()).then_some(path)
}

/// The store for a command that only reads it: never created by reading (a `status` in the
/// wrong directory must not leave an empty store behind and report `never-started`).
async fn existing_store(s: &Settings) -> Result<DieselStore, Failure> {
    if let Some(path) = missing_store_file(s) {
        return Err(Failure::Failed(format!(
            "no store at {path}: nothing has run with this configuration here (start the \
             monitor with `ip-monitor run`, or point [store] url at its store)"
        )));
    }
    store(s).await
}

async fn status(s: &Settings, as_json: bool) -> Outcome {
    let store = existing_store(s).await?;
    let report =
        StatusReport::read(&store, s.monitor.effective_lease_ttl(), SystemTime::now()).await?;
    if as_json {
        print_json(&serde_json::to_value(&report).expect("JSON"));
        return Ok(());
    }
    println!(
        "state:       {} (desired: {})",
        report.state,
        report.desired.as_str()
    );
    match &report.leader {
        Some(l) => println!(
            "leader:      {} on {} (pid {})",
            l.holder.id, l.holder.host, l.holder.pid
        ),
        None => println!("leader:      none"),
    }
    for i in &report.instances {
        println!(
            "instance:    {} on {} (pid {}): {}, heartbeat {}",
            i.holder.id,
            i.holder.host,
            i.holder.pid,
            i.state,
            time(i.heartbeat_at)
        );
    }
    if report.current.is_empty() {
        println!("current:     none recorded yet");
    }
    for c in &report.current {
        println!(
            "current:     {} {} (since {})",
            c.family,
            c.address,
            time(c.since)
        );
    }
    if let Some(m) = &report.main {
        println!(
            "last check:  {}",
            m.last_check_at.map_or("never".to_owned(), time)
        );
        println!(
            "next check:  {}",
            m.next_check_at.map_or("-".to_owned(), time)
        );
        println!("last error:  {}", m.last_error.as_deref().unwrap_or("none"));
        if let Some(e) = &m.delivery_error {
            println!("relay:       deliveries wait for a retry: {e}");
        }
        if !m.sent_via.is_empty() {
            let via: Vec<String> = m.sent_via.iter().map(|(r, n)| format!("{r} {n}")).collect();
            println!("sent via:    {}", via.join(", "));
        }
        for src in &m.sources {
            let answer = src
                .answer
                .map(|a| a.to_string())
                .or(src.error.clone())
                .unwrap_or_default();
            let latency = src
                .latency_ms
                .map(|l| format!(" ({l} ms)"))
                .unwrap_or_default();
            println!(
                "source:      {} {}: {answer}{latency}",
                src.name, src.family
            );
        }
    }
    let counts = report.deliveries;
    println!(
        "deliveries:  pending {}, in flight {}, sent {}, failed {}, superseded {}",
        counts.pending, counts.in_flight, counts.sent, counts.failed, counts.superseded
    );
    Ok(())
}

fn report_json(r: &CheckReport) -> Value {
    serde_json::to_value(r).expect("JSON")
}

async fn check(s: &Settings, as_json: bool) -> Outcome {
    let (monitor, store, _) = monitor(s).await?;
    let reports = monitor.check_once().await.map_err(|e| match e {
        CoreError::NotLeader { .. } => Failure::Failed(format!(
            "{e}: a running monitor checks on its own; see `ip-monitor status`"
        )),
        other => Failure::Failed(other.to_string()),
    })?;
    if as_json {
        print_json(&Value::Array(reports.iter().map(report_json).collect()));
    } else {
        for r in &reports {
            let family = r.outcome.family;
            match (&r.outcome.result, &r.change, r.confirming) {
                (Err(e), _, _) => println!("{family}: check failed: {e}"),
                (Ok(a), Some(c), _) => {
                    let counts = store.deliveries(c.id).await?;
                    let sent = counts
                        .iter()
                        .filter(|d| d.state == DeliveryState::Sent)
                        .count();
                    println!(
                        "{family}: changed to {a} (was {}): {} notified now, {} deliveries in all",
                        r.previous.map_or("none".to_owned(), |p| p.to_string()),
                        sent,
                        c.deliveries
                    );
                }
                (Ok(a), None, Some((seen, needed))) => {
                    println!("{family}: {a} seen {seen} of {needed} times needed")
                }
                (Ok(a), None, None) => match &r.error {
                    Some(e) => println!("{family}: {a}, not recorded: {e}"),
                    None => println!("{family}: unchanged ({a})"),
                },
            }
        }
    }
    match reports.iter().find_map(|r| r.error.as_ref()) {
        Some(e) => Err(Failure::Failed(e.to_string())),
        None => Ok(()),
    }
}

async fn retry(s: &Settings) -> Outcome {
    let (monitor, store, _) = monitor(s).await?;
    let requeued = monitor.retry_failed().await.map_err(|e| match e {
        CoreError::NotLeader { .. } => Failure::Failed(format!(
            "{e}: stop the running monitor (it sends with the configuration it started with), \
             then retry"
        )),
        other => Failure::Failed(other.to_string()),
    })?;
    let counts = store.delivery_counts().await?;
    println!(
        "requeued {requeued} failed deliveries; now pending {}, sent {}, failed {}",
        counts.pending, counts.sent, counts.failed
    );
    Ok(())
}

/// The address to announce: given, or detected now with the configured sources.
async fn address(s: &Settings, ip: Option<IpAddr>) -> Result<IpAddr, Failure> {
    if let Some(ip) = ip {
        return Ok(ip);
    }
    let family = s.monitor.families[0];
    let outcome = s.sources.check(family).await;
    outcome.result.map_err(|e| {
        Failure::Failed(format!(
            "detecting the {family} address failed ({e}); pass --ip ADDR"
        ))
    })
}

async fn test(s: &Settings, force: bool, ip: Option<IpAddr>) -> Outcome {
    let (monitor, _, recipients) = monitor(s).await?;
    let address = address(s, ip).await?;
    let url = s.url_template.render(address);
    if !force {
        let list = recipients.active().await?;
        warn_if_nobody(&list);
        println!("would send {url} to {} recipient(s):", list.valid.len());
        for r in &list.valid {
            println!("  {r}");
        }
        for r in &list.rejected {
            println!("  skipped: {r}");
        }
        println!(
            "run with --force to send it (marked as a test; the current address is not changed)"
        );
        return Ok(());
    }
    let (change, outcome) = monitor.send_test(address).await?;
    let failed: Vec<_> = outcome
        .unsent
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    println!(
        "test notice {} for {url}: {} sent, {} failed",
        change.id,
        outcome.counts.sent,
        failed.len()
    );
    for d in &failed {
        println!(
            "  failed: {}: {}",
            d.recipient,
            d.last_error.as_deref().unwrap_or("?")
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} test deliveries failed",
            failed.len()
        )))
    }
}

async fn history(s: &Settings, limit: usize, as_json: bool) -> Outcome {
    let store = existing_store(s).await?;
    let changes = store.history(limit).await?;
    if as_json {
        print_json(&Value::Array(
            changes
                .iter()
                .map(|c| {
                    json!({"id": c.id, "kind": c.kind, "family": c.family, "address": c.address, "previous": c.previous,
                           "url": c.url, "detected_at": time(c.detected_at), "deliveries": c.deliveries})
                })
                .collect(),
        ));
        return Ok(());
    }
    if changes.is_empty() {
        println!("no changes recorded");
    }
    for c in &changes {
        println!(
            "{:>5}  {}  {:<6} {} {} -> {}  ({} deliveries)",
            c.id,
            time(c.detected_at),
            c.kind.as_str(),
            c.family,
            c.previous.map_or("none".to_owned(), |p| p.to_string()),
            c.address,
            c.deliveries
        );
    }
    Ok(())
}

async fn preview(s: &Settings, out: &Path, ip: Option<IpAddr>) -> Outcome {
    let address = address(s, ip).await?;
    let url = s.url_template.render(address);
    let notice = Notice::new(0, address, url, SystemTime::now(), false)?;
    let sample = Recipient::new("staff@example.com", Some("Staff Member")).expect("valid sample");
    let files = ip_monitor_lettre::preview(&notice, &sample, &s.template, out).await?;
    println!(
        "{}\n{}\n{}",
        files.eml.display(),
        files.html.display(),
        files.png.display()
    );
    // Each channel's requests, as they would be posted now.
    for (name, chat) in &s.channels {
        for (i, request) in chat.requests(&notice, SystemTime::now()).iter().enumerate() {
            let path = out.join(format!("channel-{name}-{}.json", i + 1));
            let body: Value = serde_json::from_slice(&request.body)?;
            std::fs::write(&path, serde_json::to_string_pretty(&body)?)
                .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
            println!("{}", path.display());
        }
    }
    // Each DNS record: what its update would do (nothing is sent).
    for d in &s.dns {
        let path = out.join(format!("{}.txt", d.channel));
        let plan = d.plan.replace("{address}", &address.to_string());
        std::fs::write(&path, format!("{plan}\n"))
            .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(())
}

async fn recipients_cmd(s: &Settings, as_json: bool) -> Outcome {
    let reads_store = matches!(
        &s.recipients,
        RecipientsSetting::Query {
            database_url: None,
            ..
        }
    );
    let list = if !reads_store {
        // A fixed list, or another database: the store is not needed.
        recipients_elsewhere(s).await?.active().await?
    } else if let Some(path) = missing_store_file(s) {
        // Staff come from the store's database, which does not exist yet: nobody, and no
        // empty database left behind.
        tracing::warn!("no database at {path} yet, so no staff table");
        RecipientList::default()
    } else {
        let store = store(s).await?;
        recipients(s, &store).await?.active().await?
    };
    if as_json {
        print_json(&json!({
            "active": list.valid.iter().map(|r| json!({"email": r.email(), "name": r.name()})).collect::<Vec<_>>(),
            "skipped": list.rejected.iter().map(|r| json!({"row": r.row, "reason": r.reason})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    warn_if_nobody(&list);
    for r in &list.valid {
        println!("{r}");
    }
    for r in &list.rejected {
        println!("skipped: {r}");
    }
    Ok(())
}
