//! The monitor: its configuration, the loop, and the handle that controls it.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::address::Family;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::notice::UrlTemplate;
use crate::notify::Notifier;
use crate::recipients::{InvalidRecipient, Recipients};
use crate::source::set::{CheckOutcome, SourceSet};
use crate::store::{
    Change, ChangeOutcome, DesiredState, Holder, InstanceStatus, RunState, StateStore,
};

pub(crate) mod config;
mod metrics;
mod runner;

pub use config::{DeliveryPolicy, MonitorConfig};
pub use metrics::{MonitorMetrics, SourceResult};

/// Something that happened in the monitor; see [`MonitorHandle::subscribe`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// This instance acquired the lease.
    LeaseAcquired {
        /// The lease's fencing number.
        fence: u64,
    },
    /// This instance lost the lease (another took over, or it could not renew in time).
    LeaseLost,
    /// The desired state became paused.
    Paused,
    /// The desired state became running.
    Resumed,
    /// A full check decided on an address.
    Checked {
        /// The family.
        family: Family,
        /// The address.
        address: IpAddr,
    },
    /// A check failed; nothing was recorded.
    CheckFailed {
        /// The family.
        family: Family,
        /// Why.
        error: String,
    },
    /// A new address was seen but needs more confirmations.
    Confirming {
        /// The family.
        family: Family,
        /// The new address.
        address: IpAddr,
        /// Agreeing checks so far.
        seen: u32,
        /// Agreeing checks needed.
        needed: u32,
    },
    /// A probe saw an address other than the current one; a full check follows.
    ProbeMismatch {
        /// The family.
        family: Family,
        /// What the probe saw.
        address: IpAddr,
    },
    /// A change (or test) was recorded with its deliveries.
    Changed(Change),
    /// A recipient row was skipped.
    RecipientRejected(InvalidRecipient),
    /// A delivery was accepted.
    DeliverySent {
        /// The delivery.
        id: i64,
        /// To whom.
        email: String,
        /// The route that took it, for a notifier with several
        /// ([`FallbackNotifier`](crate::FallbackNotifier)).
        via: Option<String>,
    },
    /// A delivery failed transiently and will be retried.
    DeliveryRetry {
        /// The delivery.
        id: i64,
        /// To whom.
        email: String,
        /// When.
        at: SystemTime,
        /// Why.
        error: String,
    },
    /// A delivery failed for good.
    DeliveryFailed {
        /// The delivery.
        id: i64,
        /// To whom.
        email: String,
        /// Why.
        error: String,
    },
    /// A store operation failed (the loop carries on and retries).
    StoreError {
        /// The step that failed, such as "renewing the lease".
        step: &'static str,
        /// The store's error, with its kind ([`StoreError::is_transient`](crate::StoreError::is_transient)).
        error: Arc<crate::store::StoreError>,
    },
    /// The monitor stopped.
    Stopped,
}

/// The result of one family's full check.
#[derive(Debug)]
pub struct CheckReport {
    /// The sources' answers and the decision.
    pub outcome: CheckOutcome,
    /// The current address before this check.
    pub previous: Option<IpAddr>,
    /// The change recorded, if the address changed (and was confirmed).
    pub change: Option<Change>,
    /// Set while a new address awaits more confirmations: `(seen, needed)`.
    pub confirming: Option<(u32, u32)>,
    /// Recipient rows skipped when recording the change.
    pub rejected_recipients: Vec<InvalidRecipient>,
    /// Why nothing was recorded, when something failed.
    pub error: Option<Error>,
}

/// A configured monitor, ready to [`spawn`](Monitor::spawn).
pub struct Monitor {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: MonitorConfig,
    pub(crate) sources: SourceSet,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) recipients: Arc<dyn Recipients>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) template: UrlTemplate,
    pub(crate) holder: Holder,
    pub(crate) metrics: metrics::Metrics,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("config", &self.shared.config)
            .field("sources", &self.shared.sources)
            .field("store", &self.shared.store)
            .field("recipients", &self.shared.recipients)
            .field("notifier", &self.shared.notifier)
            .field("holder", &self.shared.holder)
            .finish()
    }
}

/// Builder for [`Monitor`].
#[derive(Debug)]
pub struct MonitorBuilder {
    sources: SourceSet,
    store: Arc<dyn StateStore>,
    recipients: Arc<dyn Recipients>,
    notifier: Arc<dyn Notifier>,
    config: MonitorConfig,
    clock: Arc<dyn Clock>,
    holder: Option<Holder>,
}

impl Monitor {
    /// Start building a monitor from its four parts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ip_monitor_core::Error> {
    /// use ip_monitor_core::*;
    /// use std::sync::Arc;
    /// let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    /// let notifier = RecordingNotifier::new();
    /// let handle = Monitor::builder(
    ///     SourceSet::new(vec![Arc::new(source)]),
    ///     MemoryStore::new(),
    ///     StaticRecipients::new(["ana@example.com"]),
    ///     notifier.clone(),
    /// )
    /// .config(MonitorConfig { service_url: "http://{ip}:8008/".into(), ..Default::default() })
    /// .build()?
    /// .spawn();
    /// let reports = handle.check_now().await?;
    /// assert_eq!(reports[0].outcome.result.as_ref().unwrap().to_string(), "81.2.69.160");
    /// handle.shutdown().await?;
    /// assert_eq!(notifier.sent_to(), ["ana@example.com"]);
    /// # Ok(()) }
    /// ```
    pub fn builder(
        sources: SourceSet,
        store: impl StateStore + 'static,
        recipients: impl Recipients + 'static,
        notifier: impl Notifier + 'static,
    ) -> MonitorBuilder {
        MonitorBuilder {
            sources,
            store: Arc::new(store),
            recipients: Arc::new(recipients),
            notifier: Arc::new(notifier),
            config: MonitorConfig::default(),
            clock: Arc::new(SystemClock),
            holder: None,
        }
    }

    /// This instance's identity in the lease and status rows.
    pub fn holder(&self) -> &Holder {
        &self.shared.holder
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.shared.config
    }

    /// One full check in this process, without starting the loop: acquire the lease,
    /// check, record a change if there is one, send what is due now, release the lease.
    /// Returns once every delivery that was due is sent, failed or waiting for a retry
    /// (which a running monitor picks up). Fails with [`Error::NotLeader`] when a running
    /// monitor holds the lease.
    pub async fn check_once(self) -> Result<Vec<CheckReport>> {
        self.runner().0.check_once().await
    }

    /// Put the failed deliveries of the latest change of each family back in the outbox (for
    /// after the relay or its credentials were fixed) and send them, under the lease like any
    /// send. Returns how many were requeued, once nothing more is due now. Fails with
    /// [`Error::NotLeader`] when a running monitor holds the lease.
    pub async fn retry_failed(self) -> Result<u64> {
        self.runner().0.retry_failed().await
    }

    /// Send a test notice for `address` to every active recipient through the outbox
    /// (parallelism, retries), without touching the current address or superseding
    /// anything. Returns the test change and where its deliveries stand once each is sent
    /// or failed: counts per state, and the deliveries that were not sent.
    pub async fn send_test(self, address: IpAddr) -> Result<(Change, ChangeOutcome)> {
        self.runner().0.send_test(address).await
    }

    fn runner(
        &self,
    ) -> (
        runner::Runner,
        mpsc::Sender<Command>,
        broadcast::Sender<Event>,
        watch::Receiver<InstanceStatus>,
    ) {
        let (commands, rx) = mpsc::channel(16);
        let (events, _) = broadcast::channel(256);
        let now = self.shared.clock.now();
        let initial = InstanceStatus {
            holder: self.shared.holder.clone(),
            state: RunState::Running,
            leader: false,
            started_at: now,
            heartbeat_at: now,
            current: Vec::new(),
            last_check_at: None,
            next_check_at: None,
            last_error: None,
            delivery_error: None,
            sent_via: Default::default(),
            sources: Vec::new(),
        };
        let (status_tx, status) = watch::channel(initial.clone());
        let runner = runner::Runner::new(
            Arc::clone(&self.shared),
            rx,
            events.clone(),
            status_tx,
            initial,
        );
        (runner, commands, events, status)
    }

    /// Start the loop on the current tokio runtime.
    pub fn spawn(self) -> MonitorHandle {
        let (runner, commands, events, status) = self.runner();
        let task = tokio::spawn(runner.run());
        MonitorHandle {
            inner: Arc::new(HandleInner {
                commands,
                status,
                events,
                shared: Arc::clone(&self.shared),
                task: Mutex::new(Some(task)),
            }),
        }
    }
}

impl MonitorBuilder {
    /// Set the configuration.
    pub fn config(mut self, config: MonitorConfig) -> Self {
        self.config = config;
        self
    }

    /// Use another clock (e.g. [`TokioClock`](crate::TokioClock) in tests on a paused clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Set this instance's identity (default [`Holder::this_process`]).
    pub fn holder(mut self, holder: Holder) -> Self {
        self.holder = Some(holder);
        self
    }

    /// Validate the configuration ([`MonitorConfig::validate`]) and the sources
    /// ([`SourceSet::validate`](crate::SourceSet::validate)) and build the monitor. Errors
    /// name the offending field: the config's own, or the sources' as `sources.FIELD`.
    pub fn build(self) -> Result<Monitor> {
        self.config.validate()?;
        self.sources.validate().map_err(|e| Error::Config {
            key: format!("sources.{}", e.field()),
            message: e.to_string_without_field(),
        })?;
        let template = UrlTemplate::parse(&self.config.service_url)?;
        Ok(Monitor {
            shared: Arc::new(Shared {
                template,
                holder: self.holder.unwrap_or_else(Holder::this_process),
                config: self.config,
                sources: self.sources,
                store: self.store,
                recipients: self.recipients,
                notifier: self.notifier,
                clock: self.clock,
                metrics: metrics::Metrics::default(),
            }),
        })
    }
}

pub(crate) enum Command {
    CheckNow(oneshot::Sender<Result<Vec<CheckReport>>>),
    CheckSoon,
    SendTest(IpAddr, oneshot::Sender<Result<Change>>),
    ReadControl,
    Shutdown(oneshot::Sender<()>),
}

/// Controls a running monitor. Cheap to clone; every clone controls the same monitor.
#[derive(Clone)]
pub struct MonitorHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<InstanceStatus>,
    events: broadcast::Sender<Event>,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorHandle")
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

impl MonitorHandle {
    /// Run a full check now (acquiring the lease first if it is free) and return one report
    /// per family. Deliveries of a recorded change proceed in the background.
    /// Fails with [`Error::NotLeader`] when another instance holds the lease.
    pub async fn check_now(&self) -> Result<Vec<CheckReport>> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::CheckNow(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Ask for a full check as soon as the loop is free, without waiting for it (for a
    /// hint that the address may have changed, such as an interface event). Only a leading,
    /// running monitor checks; a standby or a paused monitor ignores it. Fails only with
    /// [`Error::Stopped`] once the loop has ended.
    pub async fn check_soon(&self) -> Result<()> {
        self.inner
            .commands
            .send(Command::CheckSoon)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Record a test notice for `address` and send it to every active recipient through
    /// the outbox, like [`Monitor::send_test`] but in the running loop (acquiring the lease
    /// first if it is free). Returns the test change once it is recorded; its deliveries
    /// proceed in the background. Fails with [`Error::NotLeader`] when another instance
    /// holds the lease, and with [`Error::Paused`] while the monitors are paused.
    pub async fn send_test(&self, address: IpAddr) -> Result<Change> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::SendTest(address, tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// What this instance did since it started: checks, changes, source requests per
    /// result, deliveries (no I/O).
    pub fn metrics(&self) -> MonitorMetrics {
        self.inner.shared.metrics.snapshot()
    }

    /// The configuration the monitor runs with.
    pub fn config(&self) -> &MonitorConfig {
        &self.inner.shared.config
    }

    /// The store the monitor records in.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.shared.store
    }

    /// The entry URL of `address`, from the monitor's
    /// [`service_url`](MonitorConfig::service_url) template.
    pub fn entry_url(&self, address: IpAddr) -> String {
        self.inner.shared.template.render(address)
    }

    /// This instance's status now (no I/O).
    pub fn status(&self) -> InstanceStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver that changes whenever the status does.
    pub fn watch_status(&self) -> watch::Receiver<InstanceStatus> {
        self.inner.status.clone()
    }

    /// Pause every monitor on this store (sets the desired state) and apply it here at once.
    pub async fn pause(&self) -> Result<()> {
        self.set_desired(DesiredState::Paused).await
    }

    /// Resume every monitor on this store and apply it here at once.
    pub async fn resume(&self) -> Result<()> {
        self.set_desired(DesiredState::Running).await
    }

    async fn set_desired(&self, state: DesiredState) -> Result<()> {
        self.inner.shared.store.set_desired_state(state).await?;
        self.inner
            .commands
            .send(Command::ReadControl)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Events from now on. A slow receiver misses the oldest ones (see
    /// [`tokio::sync::broadcast`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Stop the loop: no new checks or sends, sends in flight get the configured grace
    /// period, then the lease is released and the status row says `stopped`. Returns when
    /// all of that is done. Calling it again (or on a clone) after it returned is a no-op.
    pub async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Shutdown(tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            task.await.map_err(|_| Error::Stopped)?;
        }
        Ok(())
    }

    /// Whether the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }
}
