//! [`FallbackNotifier`]: backup routes, tried at once when a route itself fails.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Notifier, NotifyError, SendPermit, Sent};
use crate::notice::Notice;
use crate::recipients::Recipient;

/// Routes tried in order for each message: when one fails for a reason of the route itself
/// ([`NotifyError::is_route_failure`]: unreachable, session refused, sender refused), the
/// next takes the message at once, not after the retry backoff. Any other failure — a
/// recipient refused, a message refused, a timeout after the message went out — is the
/// answer, so nothing is sent twice and a refused mailbox is not tried elsewhere. When every
/// route failed, the last one's error is returned (transient: the outbox retries, starting
/// from the first route again).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::*;
/// let (primary, backup) = (RecordingNotifier::new(), RecordingNotifier::new());
/// primary.fail_as_route(true);
/// primary.fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
/// let routes = FallbackNotifier::new("relay-1", primary.clone()).or("relay-2", backup.clone());
/// let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
/// let notice = Notice::new(1, "81.2.69.160".parse().unwrap(), "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false).unwrap();
/// let sent = routes.send(&notice, &ana, &SendPermit::always()).await.unwrap();
/// assert_eq!(sent.route.as_deref(), Some("relay-2"));
/// assert_eq!((primary.sent().len(), backup.sent().len()), (0, 1));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FallbackNotifier {
    routes: Vec<(String, Arc<dyn Notifier>)>,
}

impl FallbackNotifier {
    /// The first route, called `name` in logs and counts.
    pub fn new(name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        FallbackNotifier {
            routes: vec![(name.into(), Arc::new(notifier))],
        }
    }

    /// Then `notifier`, when the routes before it failed.
    pub fn or(mut self, name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        self.routes.push((name.into(), Arc::new(notifier)));
        self
    }

    /// The routes' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(name, _)| name.as_str())
    }
}

#[async_trait]
impl Notifier for FallbackNotifier {
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        let last = self.routes.len() - 1;
        for (i, (name, route)) in self.routes.iter().enumerate() {
            match route.send(notice, recipient, permit).await {
                Ok(Sent { route: inner }) => {
                    return Ok(Sent::via(match inner {
                        Some(inner) => format!("{name}/{inner}"),
                        None => name.clone(),
                    }));
                }
                Err(e) if i < last && e.is_route_failure() => {
                    tracing::warn!(
                        route = %name,
                        next = %self.routes[i + 1].0,
                        email = recipient.email(),
                        "route failed, trying the next: {e}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("a FallbackNotifier has at least one route")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{FailureKind, NotifierExt, RecordingNotifier};

    fn notice() -> Notice {
        Notice::new(
            1,
            "81.2.69.160".parse().unwrap(),
            "http://81.2.69.160:8008/".into(),
            std::time::SystemTime::now(),
            false,
        )
        .unwrap()
    }

    /// Only a failure of the route moves on; the answer about the recipient, a lapsed permit
    /// or the last route's failure is returned as it is.
    #[tokio::test]
    async fn only_route_failures_move_to_the_next_route() {
        let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
        let cases = [
            (FailureKind::Transient, true, Ok(Some("b"))),
            (FailureKind::Transient, false, Err(FailureKind::Transient)),
            (FailureKind::Permanent, true, Err(FailureKind::Permanent)),
            (FailureKind::Withheld, true, Err(FailureKind::Withheld)),
        ];
        for (kind, route, expected) in cases {
            let (a, b) = (RecordingNotifier::new(), RecordingNotifier::new());
            a.fail_as_route(route);
            a.fail_next("ana@example.com", 1, kind);
            let routes = FallbackNotifier::new("a", a.clone()).or("b", b.clone());
            let got = routes.send(&notice(), &ana, &SendPermit::always()).await;
            match expected {
                Ok(via) => assert_eq!(got.unwrap().route.as_deref(), via),
                Err(kind) => assert_eq!(got.unwrap_err().kind(), kind),
            }
            assert_eq!(
                b.attempts(),
                usize::from(expected.is_ok()),
                "{kind:?} {route}"
            );
        }
        // Every route down: the last one's error, transient, for the outbox to retry.
        let (a, b) = (RecordingNotifier::new(), RecordingNotifier::new());
        for n in [&a, &b] {
            n.fail_as_route(true);
            n.fail_next("ana@example.com", 1, FailureKind::Transient);
        }
        let routes = FallbackNotifier::new("a", a.clone()).or("b", b.clone());
        let e = routes.notify(&notice(), &ana).await.unwrap_err();
        assert!(e.is_transient() && e.is_route_failure());
        assert_eq!((a.attempts(), b.attempts()), (1, 1));
        assert_eq!(routes.names().collect::<Vec<_>>(), ["a", "b"]);
    }
}
