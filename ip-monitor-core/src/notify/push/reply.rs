//! Each service's reply, judged as it documents it: success, a rate limit (a busy route,
//! for as long as the service asks), a passing failure, or a refusal not worth repeating.

use std::time::Duration;

use serde_json::Value;

use super::PushService;
use crate::notify::NotifyError;
use crate::notify::api::Reply;

/// How long a rate limit waits when the service does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Whether `reply` means the message was taken.
pub(super) fn judge(service: &PushService, reply: &Reply) -> Result<(), NotifyError> {
    let v: Value = serde_json::from_str(&reply.text).unwrap_or(Value::Null);
    let status = reply.status;
    let name = service.kind();
    let shown: String = reply.text.chars().take(200).collect();
    let said = said(service, &v).unwrap_or(shown);
    let why = format!("{name} answered {status}: {said}");
    let limited = status.as_u16() == 429;
    if limited {
        let wait = asked_wait(service, &v)
            .or(reply.retry_after)
            .unwrap_or(DEFAULT_WAIT);
        return Err(NotifyError::busy(wait, why));
    }
    if status.is_server_error() {
        return Err(NotifyError::transient(why));
    }
    if !status.is_success() {
        // A wrong token or key (401, 403), a bad request, a topic that is gone.
        return Err(NotifyError::permanent(why));
    }
    let code = |key: &str| v.get(key).and_then(Value::as_i64);
    match service {
        PushService::Telegram { .. } if v["ok"] != true => Err(NotifyError::permanent(why)),
        PushService::Pushover { .. } if code("status") != Some(1) => {
            Err(NotifyError::permanent(why))
        }
        PushService::Bark { .. } => match code("code") {
            Some(200) => Ok(()),
            Some(c) if c >= 500 => Err(NotifyError::transient(why)),
            _ => Err(NotifyError::permanent(why)),
        },
        PushService::ServerChan { .. } => match code("code") {
            Some(0) => Ok(()),
            _ => Err(NotifyError::permanent(why)),
        },
        PushService::PushPlus { .. } => match code("code") {
            Some(200) => Ok(()),
            // 500 a fault of theirs; 900 the account limited for now (too many messages).
            Some(500) => Err(NotifyError::transient(why)),
            Some(900) => Err(NotifyError::busy(Duration::from_secs(3600), why)),
            _ => Err(NotifyError::permanent(why)),
        },
        _ => Ok(()),
    }
}

/// The service's own words for a failure.
fn said(service: &PushService, v: &Value) -> Option<String> {
    let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match service {
        PushService::Telegram { .. } => {
            let code = v.get("error_code")?;
            Some(format!("{code} {}", s("description").unwrap_or_default()))
        }
        PushService::Discord { .. } => {
            let message = s("message")?;
            Some(format!(
                "{} {message}",
                v.get("code").unwrap_or(&Value::Null)
            ))
        }
        PushService::Ntfy { .. } => Some(format!("{} {}", v.get("code")?, s("error")?)),
        PushService::Gotify { .. } => Some(format!(
            "{} {}",
            s("error")?,
            s("errorDescription").unwrap_or_default()
        )),
        PushService::Pushover { .. } => {
            let errors: Vec<String> = v
                .get("errors")?
                .as_array()?
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            Some(errors.join("; "))
        }
        PushService::Bark { .. } | PushService::ServerChan { .. } => Some(format!(
            "code {} {}",
            v.get("code")?,
            s("message").unwrap_or_default()
        )),
        PushService::PushPlus { .. } => Some(format!(
            "code {} {}",
            v.get("code")?,
            s("msg").unwrap_or_default()
        )),
    }
}

/// The wait a rate-limited reply asks for in its body (Telegram's `retry_after`, in
/// seconds; Discord's, in seconds with a fraction).
fn asked_wait(service: &PushService, v: &Value) -> Option<Duration> {
    let secs = match service {
        PushService::Telegram { .. } => v["parameters"]["retry_after"].as_f64()?,
        PushService::Discord { .. } => v["retry_after"].as_f64()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}
