#![doc = include_str!("../README.md")]

mod connection;
mod error;
mod model;
mod now;
mod ops;
#[cfg(feature = "postgres")]
mod pg_batch;
mod recipients;
mod redact;
mod schema;
mod store;

pub use error::Error;
pub use recipients::{DEFAULT_QUERY, DieselRecipients};
pub use redact::redact;
pub use store::{DieselStore, DieselStoreBuilder};
