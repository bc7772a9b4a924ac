use std::time::{Duration, SystemTime};

use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notice::UrlTemplate;
use crate::notify::NotifyError;
use crate::store::{Delivery, DeliveryUpdate};

/// How the monitor behaves. Public fields with the documented defaults; the builder
/// validates them.
///
/// With the `serde` feature it deserializes with every field optional (the default in its
/// place), unknown keys refused, and durations written as `"1h"`, `"30s"` or `"1h 30m"`:
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use ip_monitor_core::MonitorConfig;
/// let config: MonitorConfig =
///     serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
///         [("interval", "15m"), ("service_url", "https://{ip}/")].into_iter(),
///     ))
///     .unwrap();
/// assert_eq!(config.interval, Duration::from_secs(900));
/// assert_eq!(config.heartbeat, MonitorConfig::default().heartbeat);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct MonitorConfig {
    /// Families to track (default `[V4]`).
    pub families: Vec<Family>,
    /// Time between full checks (default 1 h).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub interval: Duration,
    /// Time between cheap probes (one request to the first source) between full checks; a
    /// probe answer that differs from the current address triggers a full check at once.
    /// `Duration::ZERO` turns probes off. Default 1 min.
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub probe_interval: Duration,
    /// Entry URL template (default `http://{ip}:8008/`).
    pub service_url: String,
    /// Notify on the first address ever seen (default true).
    pub notify_on_first: bool,
    /// At each full check that finds the address unchanged, give its notice to recipients
    /// who became active since it was recorded, once each (default true).
    pub notify_new_recipients: bool,
    /// Consecutive agreeing checks before a new address counts (default 1).
    pub confirmations: u32,
    /// How often the desired state (running / paused) is read (default 5 s).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub control_poll: Duration,
    /// How often the status row is written and the lease renewed (default 10 s).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub heartbeat: Duration,
    /// Lease time-to-live (default `3 × heartbeat`).
    #[cfg_attr(feature = "serde", serde(with = "duration::option"))]
    pub lease_ttl: Option<Duration>,
    /// Delivery parallelism and retry policy.
    pub delivery: DeliveryPolicy,
    /// How long shutdown waits for sends in flight (default 10 s).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub shutdown_grace: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            families: vec![Family::V4],
            interval: Duration::from_secs(3600),
            probe_interval: Duration::from_secs(60),
            service_url: "http://{ip}:8008/".to_owned(),
            notify_on_first: true,
            notify_new_recipients: true,
            confirmations: 1,
            control_poll: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            lease_ttl: None,
            delivery: DeliveryPolicy::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The longest duration accepted anywhere: every deadline computed from one stays
/// representable, so a typo like "100000000y" is an error, not an overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(400 * 86_400);

impl MonitorConfig {
    /// The lease ttl that applies: the configured one or `3 × heartbeat`.
    pub fn effective_lease_ttl(&self) -> Duration {
        self.lease_ttl.unwrap_or(self.heartbeat.saturating_mul(3))
    }

    /// Check every field; the error names the field (`delivery.parallelism` for one of
    /// [`DeliveryPolicy`]). [`MonitorBuilder::build`](crate::MonitorBuilder::build) calls it.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.validate_families()?;
        for (field, d) in [
            ("interval", self.interval),
            ("probe_interval", self.probe_interval),
            ("control_poll", self.control_poll),
            ("heartbeat", self.heartbeat),
            ("lease_ttl", self.effective_lease_ttl()),
            ("shutdown_grace", self.shutdown_grace),
        ] {
            at_most(field, d)?;
        }
        for (field, d) in [
            ("interval", self.interval),
            ("control_poll", self.control_poll),
            ("heartbeat", self.heartbeat),
            ("shutdown_grace", self.shutdown_grace),
        ] {
            positive(field, d)?;
        }
        if self.effective_lease_ttl() <= self.heartbeat {
            return Err(InvalidSetting::new(
                "lease_ttl",
                "must be longer than the heartbeat",
            ));
        }
        if self.confirmations == 0 {
            return Err(InvalidSetting::new("confirmations", "must be at least 1"));
        }
        self.delivery.validate()?;
        UrlTemplate::parse(&self.service_url)
            .map_err(|e| InvalidSetting::new("service_url", e.to_string()))?;
        Ok(())
    }

    fn validate_families(&self) -> Result<(), InvalidSetting> {
        if self.families.is_empty() {
            return Err(InvalidSetting::new(
                "families",
                "at least one of \"v4\", \"v6\" is required",
            ));
        }
        let mut families = self.families.clone();
        families.sort();
        families.dedup();
        if families.len() != self.families.len() {
            return Err(InvalidSetting::new(
                "families",
                "each family may appear once",
            ));
        }
        Ok(())
    }
}

/// `d` is at most [`MAX_DURATION`].
pub(crate) fn at_most(field: &'static str, d: Duration) -> Result<(), InvalidSetting> {
    if d > MAX_DURATION {
        Err(InvalidSetting::new(
            field,
            format!("must be at most {} days", MAX_DURATION.as_secs() / 86_400),
        ))
    } else {
        Ok(())
    }
}

/// `d` is not zero.
pub(crate) fn positive(field: &'static str, d: Duration) -> Result<(), InvalidSetting> {
    if d.is_zero() {
        Err(InvalidSetting::new(field, "must be greater than zero"))
    } else {
        Ok(())
    }
}

/// How deliveries are sent and retried. With the `serde` feature, deserialized like
/// [`MonitorConfig`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct DeliveryPolicy {
    /// Sends at a time (default 8).
    pub parallelism: usize,
    /// Delay before the first retry (default 30 s); it doubles per attempt.
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub retry_initial: Duration,
    /// Longest delay between retries (default 1 h).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub retry_max: Duration,
    /// Transient failures turn into a failure this long after the change (default 24 h).
    #[cfg_attr(feature = "serde", serde(with = "duration"))]
    pub give_up_after: Duration,
    /// Each delay is multiplied by a random factor in `1 ± jitter` (default 0.2).
    pub jitter: f64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            parallelism: 8,
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            jitter: 0.2,
        }
    }
}

impl DeliveryPolicy {
    /// Check every field; the error names it as a field of [`MonitorConfig`]
    /// (`delivery.retry_max`).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (field, d) in [
            ("delivery.retry_initial", self.retry_initial),
            ("delivery.retry_max", self.retry_max),
            ("delivery.give_up_after", self.give_up_after),
        ] {
            at_most(field, d)?;
        }
        positive("delivery.retry_initial", self.retry_initial)?;
        if self.parallelism == 0 {
            return Err(InvalidSetting::new(
                "delivery.parallelism",
                "must be at least 1",
            ));
        }
        if self.retry_max < self.retry_initial {
            return Err(InvalidSetting::new(
                "delivery.retry_max",
                "must not be shorter than retry_initial",
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(InvalidSetting::new(
                "delivery.jitter",
                "must be in 0.0..1.0",
            ));
        }
        Ok(())
    }

    /// The delay after failed attempt number `attempt` (1-based), before jitter:
    /// `retry_initial × 2^(attempt-1)`, at most `retry_max`.
    ///
    /// ```
    /// use ip_monitor_core::DeliveryPolicy;
    /// use std::time::Duration;
    /// let p = DeliveryPolicy::default();
    /// assert_eq!(p.backoff(1), Duration::from_secs(30));
    /// assert_eq!(p.backoff(3), Duration::from_secs(120));
    /// assert_eq!(p.backoff(30), Duration::from_secs(3600));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        self.retry_initial
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }

    /// [`backoff`](Self::backoff) with jitter applied.
    pub fn jittered(&self, attempt: u32) -> Duration {
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * fastrand::f64();
        self.backoff(attempt).mul_f64(factor.max(0.0))
    }

    /// What to record after a failed attempt at `delivery` at `now`: permanent failures fail
    /// at once; transient ones retry after the jittered backoff, a busy route's
    /// ([`NotifyError::busy`]) after the time it asked for without counting the attempt, but
    /// never later than `give_up_after` past the change, and fail once that time is reached.
    pub fn after_failure(
        &self,
        delivery: &Delivery,
        now: SystemTime,
        error: &NotifyError,
    ) -> DeliveryUpdate {
        let message = error.to_string();
        if error.is_permanent() {
            return DeliveryUpdate::Failed { error: message };
        }
        let deadline = delivery.created_at + self.give_up_after;
        if now >= deadline {
            return DeliveryUpdate::Failed {
                error: format!("gave up after {} attempts: {message}", delivery.attempts),
            };
        }
        if let Some(after) = error.busy_for() {
            // The relay's limits, not the recipient's trouble: no attempt counted.
            let at = now.checked_add(after).unwrap_or(deadline).min(deadline);
            return DeliveryUpdate::Deferred { at, error: message };
        }
        let at = (now + self.jittered(delivery.attempts.max(1))).min(deadline);
        DeliveryUpdate::Retry { at, error: message }
    }
}

/// Durations in configuration files: `"1h"`, `"30s"`, `"1h 30m"`, `"250ms"`, `"0s"`.
#[cfg(feature = "serde")]
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration such as \"30s\", \"5m\" or \"1h\": {e}"
            ))
        })
    }

    pub(super) mod option {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}
