//! The rules of the other traits: [`IpSource`](crate::IpSource) and
//! [`Notifier`](crate::Notifier).

use std::net::IpAddr;

use super::{ip, people, t};
use crate::address::Family;
use crate::notify::NotifierExt as _;

/// An [`IpSource`](crate::IpSource) answers `expected` for its family, passes validation for
/// its scope, gives the same answer to concurrent callers, and never answers the other
/// family's question with an address of the wrong family.
pub async fn source_conformance(source: &dyn crate::IpSource, expected: IpAddr) {
    use crate::source::validate_answer;
    assert!(!source.name().is_empty(), "a source has a name");
    let family = Family::of(&expected);
    let got = source.fetch(family).await.expect("the source answers");
    assert_eq!(got, expected, "the source's answer");
    validate_answer(got, family, source.scope(), source.allow_non_global())
        .expect("the answer passes validation for the source's scope");
    let together = futures_join_all((0..8).map(|_| source.fetch(family))).await;
    for a in together {
        assert_eq!(
            a.expect("concurrent fetches succeed"),
            expected,
            "concurrent fetches agree"
        );
    }
    let other = match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    if let Ok(addr) = source.fetch(other).await {
        assert_eq!(
            Family::of(&addr),
            other,
            "an answer for {other} is an {other} address"
        );
    }
}

/// A [`Notifier`](crate::Notifier) delivers a notice to each of several recipients sent at
/// once, and a test notice too. `delivered` returns what arrived at the other end as
/// `(email, url)` pairs, in any order.
pub async fn notifier_conformance<F>(notifier: &dyn crate::Notifier, delivered: F)
where
    F: Fn() -> Vec<(String, String)>,
{
    use crate::notice::Notice;
    let url = "http://81.2.69.160:8008/";
    let notice = Notice::new(1, ip("81.2.69.160"), url.to_owned(), t(0), false).expect("notice");
    let staff = people(3);
    let results = futures_join_all(staff.iter().map(|r| notifier.notify(&notice, r))).await;
    for r in results {
        r.expect("each delivery succeeds");
    }
    let test = Notice::new(
        2,
        ip("81.2.69.161"),
        "http://81.2.69.161:8008/".to_owned(),
        t(1),
        true,
    )
    .expect("notice");
    notifier
        .notify(&test, &staff[0])
        .await
        .expect("a test notice is delivered");
    let mut got = delivered();
    got.sort();
    let mut want: Vec<(String, String)> = staff
        .iter()
        .map(|r| (r.email().to_owned(), url.to_owned()))
        .collect();
    want.push((
        staff[0].email().to_owned(),
        "http://81.2.69.161:8008/".to_owned(),
    ));
    want.sort();
    assert_eq!(got, want, "each recipient got its own notice, once");
}

/// Run futures concurrently on the current task and collect their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("completed")).collect()
}
