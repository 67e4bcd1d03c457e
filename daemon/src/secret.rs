//! Values that must never reach a log: [`Secret`] for passwords and URLs that may carry one,
//! and [`redacted_url`], the one way a URL is shown.

use std::fmt;

use serde::Deserialize;

/// A value that must never reach a log or a `{:?}`: passwords and URLs that may carry one.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The real value, for handing to a driver. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// The URL with every password replaced by `***`, for logs and messages:
///
/// * in the user information: `mysql://u:***@h/db`, `redis://:***@h:6379/0`;
/// * in the query parameters drivers read passwords from: `?password=***`, `&pass=***`
///   (redis-rs' `redis+unix://` and `unix://` URLs).
///
/// The user information ends at the last `@` (so an unencoded `@`, `/`, `?` or `#` in a
/// password is hidden too, at the price of hiding a little more of an odd URL); a URL whose
/// authority is empty (`unix:///path`) has none. Text that is not a URL comes back unchanged.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) if !rest.starts_with('/') => (Some(&rest[..at]), &rest[at..]),
        _ => (None, rest),
    };
    let userinfo = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _password)) => format!("{user}:***"),
            None => info.to_string(),
        },
        None => String::new(),
    };
    let tail = match tail.split_once('?') {
        Some((before, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{before}?{}{fragment}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{userinfo}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            ("redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/9"),
            ("redis://h:1", "redis://h:1"),
            ("redis://:s3cret@host:6379/1", "redis://:***@host:6379/1"),
            ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
            ("redis://:pw@h", "redis://:***@h"),
            ("rediss://user:p%40ss:w@host/0", "rediss://user:***@host/0"),
            ("redis://user@host", "redis://user@host"),
            ("redis+unix:///run/redis.sock?db=2&pass=s3cret", "redis+unix:///run/redis.sock?db=2&pass=***"),
            ("unix:///tmp/r.sock?password=x&user=u", "unix:///tmp/r.sock?password=***&user=u"),
            ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
            ("mysql://u:pw@h/db", "mysql://u:***@h/db"),
            ("mysql://u:pw@h:3306/db?password=again#x", "mysql://u:***@h:3306/db?password=***#x"),
            ("mysql://h/db?password=pw&ssl-mode=required", "mysql://h/db?password=***&ssl-mode=required"),
            // Unencoded delimiters in a password: still hidden.
            ("redis://:pa/ss@h", "redis://:***@h"),
            ("redis://:p@ss?w#rd@h/0", "redis://:***@h/0"),
            ("weird", "weird"),
        ];
        for (url, want) in cases {
            assert_eq!(redacted_url(url), want, "{url}");
        }
    }
}
