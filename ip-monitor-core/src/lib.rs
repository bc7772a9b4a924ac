#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
pub mod clock;
pub mod error;
#[cfg(any(feature = "web", feature = "push"))]
mod html;
pub mod monitor;
#[cfg(all(feature = "interfaces", target_os = "linux"))]
pub mod netlink;
pub mod notice;
pub mod notify;
#[cfg(all(feature = "command", unix))]
mod process;
pub mod recipients;
pub mod source;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web;

// The paths of earlier releases, kept working.
#[cfg(feature = "chat")]
pub use notify::chat;
#[cfg(feature = "cloudflare")]
pub use notify::dns::cloudflare;
#[cfg(feature = "rfc2136")]
pub use notify::dns::rfc2136;
pub use source::set as check;
pub use web::report;

pub use address::{Family, Scope, is_global};
pub use clock::{Clock, SystemClock, TokioClock};
pub use error::{Error, InvalidSetting, Result};
pub use monitor::{
    CheckReport, DeliveryPolicy, Event, Monitor, MonitorBuilder, MonitorConfig, MonitorHandle,
    MonitorMetrics, SourceResult,
};
#[cfg(feature = "qr")]
pub use notice::render_qr_png;
pub use notice::{Notice, NoticeError, UrlTemplate};
pub use notify::{
    ChannelRouter, FailureKind, FallbackNotifier, Notifier, NotifierExt, NotifyError,
    RecordingNotifier, SendPermit, Sent,
};
pub use recipients::{
    InvalidRecipient, Recipient, RecipientKind, RecipientList, Recipients, RecipientsError,
    StaticRecipients, WithChannels,
};
#[cfg(all(feature = "command", unix))]
pub use source::CommandIpSource;
#[cfg(feature = "upnp")]
pub use source::UpnpSource;
#[cfg(feature = "http")]
pub use source::{AnswerFormat, HttpIpSource};
pub use source::{
    CheckError, CheckOutcome, DnsProblem, IpSource, LocalInterfaceSource, SourceError,
    SourceReport, SourceSet, StaticIpSource, Strategy,
};
#[cfg(feature = "dns")]
pub use source::{DnsIpSource, DnsQuery};
#[cfg(feature = "router")]
pub use source::{RouterProtocol, RouterSource, RouterWatch};
pub use store::{
    Change, ChangeKind, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult,
    DeliveryState, DeliveryUpdate, DesiredState, Holder, InstanceStatus, Lease, MemoryStore,
    NewChange, Recorded, RunState, SourceStatus, StateStore, StoreError,
};
pub use web::report::{InstanceReport, OverallState, StatusReport};
#[cfg(all(feature = "interfaces", target_os = "linux"))]
pub use {netlink::Prefer, netlink::watch::InterfaceWatch, source::InterfaceSource};

// Re-exported so implementers of the traits use the same macro version.
pub use async_trait::async_trait;
