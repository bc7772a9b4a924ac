#![doc = include_str!("../README.md")]

mod dkim;
mod error;
mod file;
mod message;
mod pacing;
mod preview;
mod session;
mod smtp;
mod throttle;
mod transport;
mod words;

pub use dkim::{DkimKey, SIGNED_HEADERS};
pub use error::Error;
pub use file::{FileNotifier, write_atomically};
pub use message::{MessageTemplate, escape};
pub use preview::{PreviewFiles, preview};
pub use smtp::{Password, SmtpNotifier, SmtpNotifierBuilder, Tls};
pub use words::{Locale, MessageText};

/// lettre's mailbox type, for [`MessageTemplate`]'s fields.
pub use lettre::message::Mailbox;
