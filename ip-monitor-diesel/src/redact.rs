//! Passwords out of database URLs before they are shown or logged.

/// The URL with any password replaced by `***`: in the userinfo, found as libpq finds it
/// (up to the first `@` before any `/`, so that a password may hold `?` or `#`), and in a
/// `password` or `sslpassword` query parameter.
///
/// ```
/// use ip_monitor_diesel::redact;
/// assert_eq!(redact("postgres://app:pa?ss@db/app"), "postgres://app:***@db/app");
/// assert_eq!(
///     redact("postgres://db/app?user=app&sslpassword=k3y"),
///     "postgres://db/app?user=app&sslpassword=***"
/// );
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let slash = rest.find('/').unwrap_or(rest.len());
    let (userinfo, rest) = match rest[..slash].find('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@"),
                None => format!("{userinfo}@"),
            };
            (masked, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let query = match rest.split_once('?') {
        Some((base, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", masked.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{scheme}://{userinfo}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db.internal:5432/app"),
            "postgres://app:***@db.internal:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("sqlite://ip-monitor.db"), "sqlite://ip-monitor.db");
        assert_eq!(
            redact("postgres://db/app?user=app&password=s3cret&sslmode=require"),
            "postgres://db/app?user=app&password=***&sslmode=require"
        );
    }

    #[test]
    fn passwords_holding_a_question_mark_or_in_sslpassword_are_redacted() {
        // libpq ends the userinfo at the first `@` before any `/`: `?` may be in it.
        assert_eq!(
            redact("postgres://app:pa?ss@db/app"),
            "postgres://app:***@db/app"
        );
        assert_eq!(
            redact("postgresql://app:s3c?r=et@db:5432/app?sslmode=require"),
            "postgresql://app:***@db:5432/app?sslmode=require"
        );
        assert_eq!(redact("postgres://app:pa#ss@db"), "postgres://app:***@db");
        assert_eq!(
            redact("postgres://db/app?sslpassword=k3y&PASSWORD=s3cret"),
            "postgres://db/app?sslpassword=***&PASSWORD=***"
        );
        assert_eq!(redact("postgres://db?user=a@b"), "postgres://db?user=a@b");
    }
}
