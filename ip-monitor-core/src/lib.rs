#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
mod channel;
#[cfg(feature = "chat")]
pub mod chat;
pub mod check;
pub mod clock;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(any(feature = "cloudflare", feature = "rfc2136"))]
mod dns_record;
pub mod error;
pub mod monitor;
pub mod notice;
pub mod notify;
#[cfg(any(feature = "chat", feature = "cloudflare"))]
mod outbound;
pub mod recipients;
pub mod report;
#[cfg(feature = "rfc2136")]
pub mod rfc2136;
pub mod source;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "web")]
pub mod web;

pub use address::{Family, Scope, is_global};
pub use channel::{ChannelRouter, WithChannels};
pub use check::{CheckError, CheckOutcome, SourceReport, SourceSet, Strategy};
pub use clock::{Clock, SystemClock, TokioClock};
pub use error::{Error, Result};
pub use monitor::{
    CheckReport, DeliveryPolicy, Event, Monitor, MonitorBuilder, MonitorConfig, MonitorHandle,
    MonitorMetrics, SourceResult,
};
#[cfg(feature = "qr")]
pub use notice::render_qr_png;
pub use notice::{Notice, NoticeError, UrlTemplate};
pub use notify::{
    FailureKind, FallbackNotifier, Notifier, NotifyError, RecordingNotifier, SendPermit,
};
pub use recipients::{
    InvalidRecipient, Recipient, RecipientList, Recipients, RecipientsError, StaticRecipients,
};
pub use report::{InstanceReport, OverallState, StatusReport};
#[cfg(feature = "http")]
pub use source::{AnswerFormat, HttpIpSource};
#[cfg(feature = "dns")]
pub use source::{DnsIpSource, DnsQuery};
pub use source::{IpSource, LocalInterfaceSource, SourceError, StaticIpSource};
pub use store::{
    Change, ChangeKind, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult,
    DeliveryState, DeliveryUpdate, DesiredState, Holder, InstanceStatus, Lease, MemoryStore,
    NewChange, Recorded, RunState, SourceStatus, StateStore, StoreError,
};

// Re-exported so implementers of the traits use the same macro version.
pub use async_trait::async_trait;
