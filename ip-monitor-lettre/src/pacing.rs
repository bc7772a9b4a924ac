//! Pacing to the relay: how many sessions at once and how many messages a second it takes,
//! learnt from its throttling answers — fewer sessions after a refused session, a lower
//! rate after a refused message, then back up while it accepts (additive increase,
//! multiplicative decrease) — and the holds after a refusal, probed by one message at a
//! time.
//!
//! The rate is measured from the relay's own answers: the messages accepted between one
//! refusal and the first acceptance after it are what the relay allowed in that time, so a
//! relay that counts 60 messages per 10 s settles at about 6 a second after its first
//! refusal, not at the fraction of it a blind halving would leave.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::throttle::Throttle;

/// A message waits inside the notifier at most this long for the relay; beyond it, the
/// delivery goes back to the outbox, deferred.
pub(crate) const HORIZON: Duration = Duration::from_secs(60);

/// Multiplicative decrease of the rate after a refusal.
const DECREASE: f64 = 0.7;

/// Additive increase of the rate per accepted message, in messages a second: about 0.5 %
/// a second at any rate.
const INCREASE: f64 = 0.005;

/// The slowest rate learnt: one message a minute.
const SLOWEST: f64 = 1.0 / 60.0;

/// Accepted messages per session, with sends waiting for a session, before one more
/// session is tried.
const ACCEPTED_PER_SESSION_STEP: u32 = 20;

/// The fixed limits of a route, and the wait after a quota answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most sessions at once.
    pub(crate) sessions: usize,
    /// The most messages a minute, when known.
    pub(crate) per_minute: Option<u32>,
    /// How long a sending quota holds the route.
    pub(crate) quota_retry: Duration,
}

/// The pacing of one relay, shared by every send to it.
#[derive(Debug)]
pub(crate) struct Pacer {
    limits: Limits,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    /// The sessions allowed now, at most `limits.sessions`.
    sessions: usize,
    /// Sends admitted and not finished.
    out: usize,
    /// A send waited for a session since the session limit last changed.
    short_of_sessions: bool,
    /// Messages accepted since the session limit last changed.
    accepted_since_step: u32,
    /// The rate learnt, in messages a second (none: not throttled yet).
    rate: Option<f64>,
    /// The earliest start of the next message under the rate.
    next_start: Instant,
    /// No message starts before this, but the probe that ends the hold.
    hold_until: Option<Instant>,
    /// The probe after a hold is out: the others wait for its answer.
    probing: bool,
    /// Rate refusals since the last acceptance.
    refusals: u32,
    /// The first acceptance since the last rate refusal, and how many since.
    streak: Option<(Instant, u32)>,
    /// The streak a rate refusal ended: the first acceptance after it measures the rate.
    ended: Option<(Instant, u32)>,
    /// Counts the holds begun: a send admitted before the current hold began answers for
    /// the streak before it, and neither ends nor extends the hold.
    epoch: u64,
}

/// What an admitted send turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The relay took the message.
    Accepted,
    /// The relay throttled it.
    Throttled(Throttle),
    /// Anything else (a refused recipient, a network error): says nothing of the pace.
    Other,
}

/// A send admitted by the [`Pacer`]; dropping it unfinished counts as [`Outcome::Other`].
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    pacer: &'a Pacer,
    epoch: u64,
    done: bool,
}

impl Ticket<'_> {
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.pacer.finish(outcome, self.epoch);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.pacer.finish(Outcome::Other, self.epoch);
        }
    }
}

/// What a send waiting for admission does next.
enum Decision {
    Go(u64),
    WaitUntil(Instant),
    WaitForChange,
    /// Held beyond the horizon: defer for this long.
    Defer(Duration),
}

impl Pacer {
    pub(crate) fn new(limits: Limits) -> Self {
        let limits = Limits {
            sessions: limits.sessions.max(1),
            per_minute: limits.per_minute.filter(|&n| n > 0),
            ..limits
        };
        Pacer {
            limits,
            state: Mutex::new(State {
                sessions: limits.sessions,
                out: 0,
                short_of_sessions: false,
                accepted_since_step: 0,
                rate: None,
                next_start: Instant::now(),
                hold_until: None,
                probing: false,
                refusals: 0,
                streak: None,
                ended: None,
                epoch: 0,
            }),
            changed: Notify::new(),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a session and the rate to allow one more message, or, when the relay holds
    /// the route for longer than [`HORIZON`], how long it holds it.
    pub(crate) async fn admit(&self) -> Result<Ticket<'_>, Duration> {
        loop {
            let changed = self.changed.notified();
            let decision = self.decide(Instant::now());
            match decision {
                Decision::Go(epoch) => {
                    return Ok(Ticket {
                        pacer: self,
                        epoch,
                        done: false,
                    });
                }
                Decision::Defer(left) => return Err(left),
                Decision::WaitUntil(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                Decision::WaitForChange => changed.await,
            }
        }
    }

    fn decide(&self, now: Instant) -> Decision {
        let mut s = self.state();
        let mut probe = false;
        if let Some(until) = s.hold_until {
            if until > now {
                let left = until - now;
                return if left > HORIZON {
                    Decision::Defer(left)
                } else {
                    Decision::WaitUntil(until)
                };
            }
            if s.probing {
                return Decision::WaitForChange;
            }
            probe = true;
        }
        if s.out >= s.sessions {
            s.short_of_sessions = true;
            return Decision::WaitForChange;
        }
        if let Some(rate) = self.rate(&s) {
            if s.next_start > now {
                return Decision::WaitUntil(s.next_start);
            }
            s.next_start = s.next_start.max(now) + Duration::from_secs_f64(1.0 / rate);
        }
        s.probing = probe;
        s.out += 1;
        Decision::Go(s.epoch)
    }

    /// The rate in force: the learnt one within the fixed cap.
    fn rate(&self, s: &State) -> Option<f64> {
        let cap = self.limits.per_minute.map(|n| f64::from(n) / 60.0);
        match (s.rate, cap) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        }
    }

    fn finish(&self, outcome: Outcome, epoch: u64) {
        let now = Instant::now();
        {
            let mut s = self.state();
            s.out = s.out.saturating_sub(1);
            let others = s.out;
            if epoch != s.epoch {
                // Admitted before the current hold began: an answer for the streak before it.
                if let (Outcome::Accepted, Some((_, n))) = (outcome, &mut s.ended) {
                    *n += 1;
                }
                drop(s);
                self.changed.notify_waiters();
                return;
            }
            match outcome {
                Outcome::Accepted => s.accepted(now, self.limits.sessions),
                Outcome::Throttled(Throttle::Sessions) => {
                    s.probing = false;
                    s.sessions = s.sessions.saturating_sub(1).min(others).max(1);
                    s.short_of_sessions = false;
                    s.accepted_since_step = 0;
                    if others == 0 {
                        // Not even one session: wait before knocking again.
                        s.hold(now);
                    }
                    tracing::info!(
                        sessions = s.sessions,
                        "the relay refused a session; fewer at once"
                    );
                }
                Outcome::Throttled(Throttle::Rate) => {
                    s.refused_rate(now);
                    tracing::info!(
                        per_second = s.rate.unwrap_or_default(),
                        "the relay refused a message for its rate; slower"
                    );
                }
                Outcome::Throttled(Throttle::Quota) => {
                    if !s.probing {
                        s.epoch += 1;
                    }
                    s.probing = false;
                    s.hold_until = Some(now + self.limits.quota_retry);
                    tracing::warn!(
                        retry_in = ?self.limits.quota_retry,
                        "the relay's sending quota is used up; holding its messages"
                    );
                }
                Outcome::Other => {
                    // The relay answered without throttling (or could not be reached): a
                    // hold it ended is over.
                    if s.probing {
                        s.probing = false;
                        s.hold_until = None;
                    }
                }
            }
        }
        self.changed.notify_waiters();
    }
}

impl State {
    fn accepted(&mut self, now: Instant, most_sessions: usize) {
        self.probing = false;
        self.hold_until = None;
        self.refusals = 0;
        if let Some((start, n)) = self.ended.take() {
            // What the relay allowed between the last streak's start and now.
            let elapsed = now.duration_since(start).as_secs_f64();
            if n >= 2 && elapsed >= 1.0 {
                self.rate = Some((f64::from(n) / elapsed).max(SLOWEST));
            }
        }
        match &mut self.streak {
            Some((_, n)) => *n += 1,
            None => self.streak = Some((now, 1)),
        }
        if let Some(rate) = &mut self.rate {
            *rate += INCREASE;
        }
        self.accepted_since_step += 1;
        if self.short_of_sessions
            && self.sessions < most_sessions
            && self.accepted_since_step >= ACCEPTED_PER_SESSION_STEP * self.sessions as u32
        {
            self.sessions += 1;
            self.short_of_sessions = false;
            self.accepted_since_step = 0;
        }
    }

    /// A refusal for the rate: slow down, and hold the route until one probe gets through.
    /// The first refusal of a hold ends the streak, whose length the probe that gets
    /// through turns into the rate; a refused probe holds on.
    fn refused_rate(&mut self, now: Instant) {
        if !self.probing {
            self.ended = self.streak.take();
            if let Some(rate) = &mut self.rate {
                *rate = (*rate * DECREASE).max(SLOWEST);
            }
        }
        self.hold(now);
    }

    /// Hold the route: a new hold (the sends out now answer for the time before it), or a
    /// refused probe's longer one.
    fn hold(&mut self, now: Instant) {
        if !self.probing {
            self.epoch += 1;
        }
        self.probing = false;
        self.refusals += 1;
        self.hold_until = Some(now + hold(self.refusals));
        self.next_start = self.next_start.max(now);
    }
}

/// The hold after the `n`th refusal in a row: a second for the first eight (a relay's
/// window is often ten seconds), then doubling up to half a minute.
fn hold(n: u32) -> Duration {
    let doublings = n.saturating_sub(8).min(5);
    Duration::from_secs(1 << doublings).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(sessions: usize) -> Pacer {
        Pacer::new(Limits {
            sessions,
            per_minute: None,
            quota_retry: Duration::from_secs(3600),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_session_lowers_the_limit_to_those_that_got_one() {
        let p = pacer(8);
        let tickets: Vec<_> = {
            let mut t = Vec::new();
            for _ in 0..8 {
                t.push(p.admit().await.unwrap());
            }
            t
        };
        let mut tickets = tickets.into_iter();
        // Six refused at the greeting while two sessions are open.
        for t in tickets.by_ref().take(6) {
            t.finish(Outcome::Throttled(Throttle::Sessions));
        }
        assert_eq!(p.state().sessions, 2);
        // The two open ones go on; a third waits for one of them.
        let third = tokio::time::timeout(Duration::from_millis(10), p.admit()).await;
        assert!(third.is_err(), "no third session at once");
        for t in tickets {
            t.finish(Outcome::Accepted);
        }
        // Back up once sends keep waiting for a session and the relay keeps accepting.
        let mut rounds = 0;
        while p.state().sessions == 2 {
            rounds += 1;
            assert!(rounds <= ACCEPTED_PER_SESSION_STEP, "never back up");
            let (a, b) = (p.admit().await.unwrap(), p.admit().await.unwrap());
            assert!(
                tokio::time::timeout(Duration::from_millis(1), p.admit())
                    .await
                    .is_err()
            );
            a.finish(Outcome::Accepted);
            b.finish(Outcome::Accepted);
        }
        assert_eq!(p.state().sessions, 3);
    }

    /// A relay that allows 60 messages per 10 s window: after its first refusal the rate
    /// is measured at about 6 a second, and few are refused after that.
    #[tokio::test(start_paused = true)]
    async fn the_rate_is_learnt_from_the_relay_window() {
        let p = pacer(2);
        let start = Instant::now();
        let (mut window, mut in_window) = (start, 0u32);
        let (mut accepted, mut refused) = (0, 0);
        while accepted < 300 {
            let t = p.admit().await.unwrap();
            let now = Instant::now();
            if now.duration_since(window) >= Duration::from_secs(10) {
                (window, in_window) = (now, 0);
            }
            in_window += 1;
            if in_window > 60 {
                refused += 1;
                t.finish(Outcome::Throttled(Throttle::Rate));
            } else {
                accepted += 1;
                tokio::time::advance(Duration::from_millis(5)).await;
                t.finish(Outcome::Accepted);
            }
        }
        let took = start.elapsed();
        let rate = p.state().rate.unwrap();
        assert!((5.0..7.0).contains(&rate), "{rate}");
        assert!(took < Duration::from_secs(56), "{took:?}: ideal 50 s");
        assert!(refused < 20, "{refused} refused");
    }

    /// Two sessions out; one is refused for the rate, then the other, admitted before the
    /// hold, is accepted: that answer is the old streak's, and neither ends the hold nor
    /// measures a rate from one message.
    #[tokio::test(start_paused = true)]
    async fn a_send_admitted_before_the_hold_does_not_end_it() {
        let p = pacer(2);
        for _ in 0..10 {
            p.admit().await.unwrap().finish(Outcome::Accepted);
        }
        let (a, b) = (p.admit().await.unwrap(), p.admit().await.unwrap());
        a.finish(Outcome::Throttled(Throttle::Rate));
        b.finish(Outcome::Accepted);
        let s = p.state();
        assert!(s.hold_until.is_some(), "still held");
        assert_eq!(s.rate, None, "no rate from a late answer");
        assert_eq!(
            s.ended.map(|(_, n)| n),
            Some(11),
            "counted in the streak it ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quota_holds_the_route_and_defers_beyond_the_horizon() {
        let p = pacer(4);
        let t = p.admit().await.unwrap();
        t.finish(Outcome::Throttled(Throttle::Quota));
        let left = p.admit().await.unwrap_err();
        assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
        tokio::time::advance(Duration::from_secs(3600)).await;
        // One probe; the others wait for its answer.
        let probe = p.admit().await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(10), p.admit())
                .await
                .is_err()
        );
        probe.finish(Outcome::Accepted);
        let _ = p.admit().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_cap_spaces_the_messages() {
        let p = Pacer::new(Limits {
            sessions: 8,
            per_minute: Some(120),
            quota_retry: Duration::from_secs(3600),
        });
        let start = Instant::now();
        for _ in 0..11 {
            p.admit().await.unwrap().finish(Outcome::Accepted);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn holds_grow_after_eight_refusals() {
        assert_eq!(hold(1), Duration::from_secs(1));
        assert_eq!(hold(8), Duration::from_secs(1));
        assert_eq!(hold(9), Duration::from_secs(2));
        assert_eq!(hold(20), Duration::from_secs(30));
    }
}
