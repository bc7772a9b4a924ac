//! [`StoreError`]: why a store operation failed, and whether to retry.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The lease passed in is no longer the valid lease (expired, taken over, released):
    /// the caller must stop acting.
    #[error("the lease is no longer held")]
    LeaseLost,
    /// A record that was referred to does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored data could not be read back (a corrupt or foreign row).
    #[error("invalid stored data: {what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// The backend failed (SQL, a constraint, a schema mismatch): retrying the same
    /// operation is not expected to help.
    #[error("store backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend is busy or out of reach for now (a lock held by another process, a
    /// serialization failure, a pool timeout, a lost connection): the same operation may
    /// succeed when tried again.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wrap a backend error that retrying will not fix.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(e.into())
    }

    /// Wrap a backend error that retrying may fix (busy, unreachable, timed out).
    pub fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable(e.into())
    }

    /// Whether the same operation may succeed when tried again: the store was busy or out
    /// of reach. A lost lease is not transient: the caller must stop acting.
    ///
    /// ```
    /// use ip_monitor_core::StoreError;
    /// assert!(StoreError::unavailable("database is locked").is_transient());
    /// assert!(!StoreError::LeaseLost.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
