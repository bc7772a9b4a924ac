//! The database's clock as a typed expression, so that statements using it are prepared once
//! and cached like any other (a raw SQL literal would make diesel prepare them every time).

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::BigInt;

/// The database's time in milliseconds since the epoch: the one clock every lease is
/// judged on, whatever the clocks of the hosts using it say.
#[derive(Debug, Clone, Copy, QueryId)]
pub(crate) struct DbNowMs;

impl Expression for DbNowMs {
    type SqlType = BigInt;
}

impl<QS> AppearsOnTable<QS> for DbNowMs {}

impl<QS> SelectableExpression<QS> for DbNowMs {}

impl<G> ValidGrouping<G> for DbNowMs {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// The SQL of [`DbNowMs`] on each backend.
pub(crate) trait NowSql: Backend {
    const NOW_MS: &'static str;
}

#[cfg(feature = "sqlite")]
impl NowSql for diesel::sqlite::Sqlite {
    const NOW_MS: &'static str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)";
}

#[cfg(feature = "postgres")]
impl NowSql for diesel::pg::Pg {
    const NOW_MS: &'static str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
}

impl<DB: NowSql> QueryFragment<DB> for DbNowMs {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(DB::NOW_MS);
        Ok(())
    }
}
