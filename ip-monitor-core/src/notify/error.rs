//! A failed delivery and its kind: [`NotifyError`], [`FailureKind`].

/// Whether a failed delivery is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Try again later (a 4xx reply, a network error, a timeout, a relay that refuses the
    /// sender or the session).
    Transient,
    /// Give up on this recipient for this notice (the recipient's mailbox was refused).
    Permanent,
    /// Not handed over, because the [`SendPermit`](super::SendPermit) was no longer valid (the lease lapsed,
    /// the notice was superseded). Nothing was sent; the delivery goes back to the queue.
    Withheld,
}

/// A failed delivery, with the answer to "retry?".
#[derive(Debug, thiserror::Error)]
#[error("{} delivery failure: {source}", match .kind { FailureKind::Transient => "transient", FailureKind::Permanent => "permanent", FailureKind::Withheld => "withheld" })]
pub struct NotifyError {
    kind: FailureKind,
    route: bool,
    /// Set for a busy route: how long to wait, the attempt not counted.
    busy: Option<std::time::Duration>,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl NotifyError {
    /// A failure worth retrying.
    pub fn transient(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            route: false,
            busy: None,
            source: source.into(),
        }
    }

    /// A transient failure of the route itself, before anything was said about this
    /// recipient: the relay could not be reached (connection refused or timed out), the
    /// session could not be set up (greeting, TLS, authentication), or the relay refused
    /// the sender. Nothing was handed over, so another route may take the message at once
    /// ([`FallbackNotifier`](super::FallbackNotifier)).
    pub fn route(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            route: true,
            busy: None,
            source: source.into(),
        }
    }

    /// The route is busy: the relay throttled the sending (too many sessions, too many
    /// messages for now, a sending quota), which says nothing about this recipient. The
    /// delivery is deferred for `after` without counting the attempt against its backoff
    /// (still within `give_up_after`), and, as a failure of the route, another route may
    /// take the message at once ([`FallbackNotifier`](super::FallbackNotifier)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ip_monitor_core::NotifyError;
    /// let e = NotifyError::busy(Duration::from_secs(3600), "550 5.4.5 Daily sending quota exceeded");
    /// assert!(e.is_transient() && e.is_route_failure());
    /// assert_eq!(e.busy_for(), Some(Duration::from_secs(3600)));
    /// ```
    pub fn busy(
        after: std::time::Duration,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            route: true,
            busy: Some(after),
            source: source.into(),
        }
    }

    /// For a [`busy`](Self::busy) route, how long to wait before the next try.
    pub fn busy_for(&self) -> Option<std::time::Duration> {
        self.busy
    }

    /// A failure not worth retrying.
    pub fn permanent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Permanent,
            route: false,
            busy: None,
            source: source.into(),
        }
    }

    /// Not handed over: the send permit was no longer valid.
    pub fn withheld() -> Self {
        NotifyError {
            kind: FailureKind::Withheld,
            route: false,
            busy: None,
            source: "not handed over: the lease lapsed or the notice was superseded".into(),
        }
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.kind == FailureKind::Permanent
    }

    /// Whether the route failed before anything was said about this recipient (see
    /// [`route`](Self::route)): another route may take the message at once.
    pub fn is_route_failure(&self) -> bool {
        self.route
    }

    /// Whether nothing was handed over because the permit had lapsed.
    pub fn is_withheld(&self) -> bool {
        self.kind == FailureKind::Withheld
    }
}
