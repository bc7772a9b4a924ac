//! `[log]`: the stderr lines also written to a file, rotated daily or by size.

use std::path::PathBuf;

use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LogConfig {
    file: Option<PathBuf>,
    rotate: Option<String>,
    max_size_mb: Option<u64>,
    keep: Option<usize>,
}

/// Where and how the log file is written (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The live file (`file`).
    pub file: PathBuf,
    /// When it is rotated (`rotate = "daily"`, or `"size"` with `max_size_mb`).
    pub rotation: crate::logfile::Rotation,
    /// Rotated files kept (`keep`, default 7).
    pub keep: usize,
}

impl LogConfig {
    pub(super) fn build(self) -> Result<LogSettings, KeyError> {
        let rotation = match self.rotate.as_deref().unwrap_or("daily") {
            "daily" => {
                if self.max_size_mb.is_some() {
                    return Err(KeyError::new(
                        "log.max_size_mb",
                        "only with rotate = \"size\"",
                    ));
                }
                crate::logfile::Rotation::Daily
            }
            "size" => match self.max_size_mb.unwrap_or(10) {
                0 => return Err(KeyError::new("log.max_size_mb", "must be at least 1")),
                mb => crate::logfile::Rotation::Size(mb.saturating_mul(1 << 20)),
            },
            other => {
                return Err(KeyError::new(
                    "log.rotate",
                    format!("{other:?}: expected \"daily\" or \"size\""),
                ));
            }
        };
        let file = self
            .file
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| KeyError::new("log.file", "required in [log]"))?;
        Ok(LogSettings {
            file,
            rotation,
            keep: self.keep.unwrap_or(7),
        })
    }
}
