#![doc = include_str!("../README.md")]

mod error;
mod file;
mod message;
mod pacing;
mod preview;
mod session;
mod smtp;
mod throttle;
mod transport;

pub use error::Error;
pub use file::FileNotifier;
pub use message::{Locale, MessageTemplate, MessageText, escape};
pub use preview::{PreviewFiles, preview};
pub use smtp::{Password, SmtpNotifier, SmtpNotifierBuilder, Tls};

/// lettre's mailbox type, for [`MessageTemplate`]'s fields.
pub use lettre::message::Mailbox;
