//! Asking several sources and deciding on one address: strategies and check outcomes.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::address::Family;
use crate::error::InvalidSetting;
use crate::monitor::config::{at_most, positive};
use crate::source::{IpSource, SourceError, validate_answer};

/// How the answers of several sources become one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Strategy {
    /// Ask all at once; the first address that `quorum` sources agree on wins, as soon as
    /// they do. Slow sources are not waited for.
    #[default]
    Quorum,
    /// Ask all at once; the first valid answer wins.
    First,
    /// Ask one after another in order; the first valid answer wins.
    Fallback,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Quorum => "quorum",
            Strategy::First => "first",
            Strategy::Fallback => "fallback",
        })
    }
}

/// Why a check decided on no address. Nothing is recorded after one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No sources are configured.
    #[error("no IP sources configured")]
    NoSources,
    /// Valid answers disagree and no address reached the quorum.
    #[error("sources disagree: {}", format_tally(.answers))]
    Disagreement {
        /// Each distinct address and how many sources gave it.
        answers: Vec<(IpAddr, usize)>,
        /// The agreement needed.
        quorum: usize,
    },
    /// Too few sources gave a valid answer.
    #[error("{got} valid answer(s), {needed} needed")]
    TooFewAnswers {
        /// Valid answers needed.
        needed: usize,
        /// Valid answers received.
        got: usize,
    },
}

fn format_tally(answers: &[(IpAddr, usize)]) -> String {
    answers
        .iter()
        .map(|(a, n)| format!("{a} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one source contributed to a check.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The source's name.
    pub source: String,
    /// Its validated answer, its error, or `None` when the check was decided (or ended)
    /// before it answered.
    pub result: Option<Result<IpAddr, Arc<SourceError>>>,
    /// How long it took to answer (`None` when it did not).
    pub latency: Option<Duration>,
}

/// The outcome of one check of one family: the decision and every source's part in it.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The family checked.
    pub family: Family,
    /// The strategy used.
    pub strategy: Strategy,
    /// The decided address, or why there is none.
    pub result: Result<IpAddr, CheckError>,
    /// One report per configured source, in configuration order.
    pub reports: Vec<SourceReport>,
    /// How long the check took.
    pub elapsed: Duration,
}

/// The configured sources, the strategy over them and the per-source timeout.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, SourceSet, StaticIpSource, Strategy};
/// use std::sync::Arc;
/// let a = StaticIpSource::new("a").with_answer("81.2.69.160".parse().unwrap());
/// let b = StaticIpSource::new("b").with_answer("81.2.69.160".parse().unwrap());
/// let c = StaticIpSource::new("c"); // fails
/// let set = SourceSet::new(vec![Arc::new(a), Arc::new(b), Arc::new(c)]).strategy(Strategy::Quorum);
/// let outcome = set.check(Family::V4).await;
/// assert_eq!(outcome.result.unwrap().to_string(), "81.2.69.160");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SourceSet {
    sources: Vec<Arc<dyn IpSource>>,
    strategy: Strategy,
    quorum: Option<usize>,
    timeout: Duration,
}

impl SourceSet {
    /// The sources, in order, with the quorum strategy, quorum `min(2, sources)` and a 5 s
    /// timeout.
    pub fn new(sources: Vec<Arc<dyn IpSource>>) -> Self {
        SourceSet {
            sources,
            strategy: Strategy::Quorum,
            quorum: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// Set the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Set the quorum (for [`Strategy::Quorum`]). Clamped to `1..=sources` when used; the
    /// monitor's builder rejects a value outside that range.
    pub fn quorum(mut self, quorum: usize) -> Self {
        self.quorum = Some(quorum);
        self
    }

    /// Set the per-source timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The sources, in order.
    pub fn sources(&self) -> &[Arc<dyn IpSource>] {
        &self.sources
    }

    /// The strategy.
    pub fn current_strategy(&self) -> Strategy {
        self.strategy
    }

    /// Check the set: at least one source, a quorum between 1 and their number, a timeout
    /// above zero. The error names the field: `list`, `quorum` or `timeout`.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let n = self.sources().len();
        if n == 0 {
            return Err(InvalidSetting::new(
                "list",
                "at least one IP source is required",
            ));
        }
        if let Some(q) = self.configured_quorum()
            && (q == 0 || q > n)
        {
            return Err(InvalidSetting::new(
                "quorum",
                format!("must be between 1 and the number of sources ({n})"),
            ));
        }
        at_most("timeout", self.current_timeout())?;
        positive("timeout", self.current_timeout())
    }

    /// The timeout each source gets.
    pub fn current_timeout(&self) -> Duration {
        self.timeout
    }

    /// The quorum that applies: the configured one, or `min(2, sources)`.
    pub fn effective_quorum(&self) -> usize {
        self.quorum.unwrap_or(2).clamp(1, self.sources.len().max(1))
    }

    /// The configured quorum, if one was set.
    pub fn configured_quorum(&self) -> Option<usize> {
        self.quorum
    }

    /// Ask one source once, with the timeout, and validate its answer.
    pub async fn ask(
        source: &Arc<dyn IpSource>,
        family: Family,
        timeout: Duration,
    ) -> (Result<IpAddr, SourceError>, Duration) {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, source.fetch(family)).await {
            Ok(Ok(addr)) => {
                validate_answer(addr, family, source.scope(), source.allow_non_global())
            }
            Ok(Err(SourceError::Timeout(_))) | Err(_) => Err(SourceError::Timeout(timeout)),
            Ok(Err(e)) => Err(e),
        };
        (result, started.elapsed())
    }

    /// A cheap probe: one request to the first source. `None` when there are no sources.
    pub async fn probe(&self, family: Family) -> Option<SourceReport> {
        let source = self.sources.first()?;
        let (result, latency) = Self::ask(source, family, self.timeout).await;
        Some(SourceReport {
            source: source.name().to_owned(),
            result: Some(result.map_err(Arc::new)),
            latency: Some(latency),
        })
    }

    /// Check `family` with the configured strategy. Returns as soon as the outcome is
    /// decided; requests still out are dropped.
    pub async fn check(&self, family: Family) -> CheckOutcome {
        let started = Instant::now();
        let mut reports: Vec<SourceReport> = self
            .sources
            .iter()
            .map(|s| SourceReport {
                source: s.name().to_owned(),
                result: None,
                latency: None,
            })
            .collect();
        let result = if self.sources.is_empty() {
            Err(CheckError::NoSources)
        } else {
            match self.strategy {
                Strategy::Fallback => self.fallback(family, &mut reports).await,
                Strategy::First => self.concurrent(family, 1, &mut reports).await,
                Strategy::Quorum => {
                    self.concurrent(family, self.effective_quorum(), &mut reports)
                        .await
                }
            }
        };
        CheckOutcome {
            family,
            strategy: self.strategy,
            result,
            reports,
            elapsed: started.elapsed(),
        }
    }

    async fn fallback(
        &self,
        family: Family,
        reports: &mut [SourceReport],
    ) -> Result<IpAddr, CheckError> {
        for (i, source) in self.sources.iter().enumerate() {
            let (result, latency) = Self::ask(source, family, self.timeout).await;
            let ok = result.as_ref().ok().copied();
            reports[i].result = Some(result.map_err(Arc::new));
            reports[i].latency = Some(latency);
            if let Some(addr) = ok {
                return Ok(addr);
            }
        }
        Err(CheckError::TooFewAnswers { needed: 1, got: 0 })
    }

    async fn concurrent(
        &self,
        family: Family,
        needed: usize,
        reports: &mut [SourceReport],
    ) -> Result<IpAddr, CheckError> {
        let mut tasks = JoinSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let source = Arc::clone(source);
            let timeout = self.timeout;
            tasks.spawn(async move { (i, Self::ask(&source, family, timeout).await) });
        }
        let mut tally: Vec<(IpAddr, usize)> = Vec::new();
        let mut remaining = self.sources.len();
        while let Some(joined) = tasks.join_next().await {
            remaining -= 1;
            let Ok((i, (result, latency))) = joined else {
                continue; // a source panicked: it simply gave no answer
            };
            reports[i].latency = Some(latency);
            if let Ok(addr) = &result {
                match tally.iter_mut().find(|(a, _)| a == addr) {
                    Some((_, n)) => *n += 1,
                    None => tally.push((*addr, 1)),
                }
            }
            reports[i].result = Some(result.map_err(Arc::new));
            if let Some((addr, _)) = tally.iter().find(|(_, n)| *n >= needed) {
                return Ok(*addr);
            }
            let best = tally.iter().map(|(_, n)| *n).max().unwrap_or(0);
            if best + remaining < needed {
                break;
            }
        }
        let got: usize = tally.iter().map(|(_, n)| n).sum();
        if tally.len() > 1 {
            Err(CheckError::Disagreement {
                answers: tally,
                quorum: needed,
            })
        } else {
            Err(CheckError::TooFewAnswers { needed, got })
        }
    }
}
