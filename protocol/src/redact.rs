//! Secrets out of locations: a store location may carry a password
//! (`mongodb://user:secret@host/db`, `redis://:secret@host:6379/0`) or a token in its query
//! (`?password=…`, `?token=…`). Everything that shows a location — logs, `asebytesd status`,
//! `repr`, error messages — shows it through [`redact`], on both sides of the socket.

use std::borrow::Cow;

/// What a hidden secret is replaced with.
pub const HIDDEN: &str = "***";

/// Query parameter names whose values are secrets (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "secret",
    "auth",
    "authtoken",
    "access_token",
    "apikey",
    "api_key",
    "tlscertificatekeyfilepassword",
    "sslkeypassword",
];

/// `location` with the password of its user info and the values of secret query parameters
/// replaced by [`HIDDEN`]; borrowed unchanged when there is nothing to hide (plain paths).
///
/// ```
/// use asebytes_protocol::redact::redact;
/// assert_eq!(redact("mongodb://u:pw@h:1/db?tls=true"), "mongodb://u:***@h:1/db?tls=true");
/// assert_eq!(redact("redis://:pw@h/0"), "redis://:***@h/0");
/// assert_eq!(redact("hf://org/ds?token=hf_x"), "hf://org/ds?token=***");
/// assert_eq!(redact("/data/x.lmdb"), "/data/x.lmdb");
/// ```
pub fn redact(location: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = location.split_once("://") else {
        return Cow::Borrowed(location);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = redact_userinfo(authority);
    let tail = redact_query(tail);
    if matches!((&authority, &tail), (Cow::Borrowed(_), Cow::Borrowed(_))) {
        return Cow::Borrowed(location);
    }
    Cow::Owned(format!("{scheme}://{authority}{tail}"))
}

/// `user:password@host` → `user:***@host` (the last `@` ends the user info, as in URL
/// parsers: a password may contain `@`).
fn redact_userinfo(authority: &str) -> Cow<'_, str> {
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(authority);
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => Cow::Owned(format!("{user}:{HIDDEN}{host}")),
        None => Cow::Borrowed(authority),
    }
}

/// `?a=1&token=x#f` → `?a=1&token=***#f`.
fn redact_query(tail: &str) -> Cow<'_, str> {
    let Some(q) = tail.find('?') else {
        return Cow::Borrowed(tail);
    };
    let (path, rest) = tail.split_at(q + 1);
    let (query, fragment) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    let mut changed = false;
    let parts: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => {
                changed = true;
                Cow::Owned(format!("{name}={HIDDEN}"))
            }
            _ => Cow::Borrowed(pair),
        })
        .collect();
    if !changed {
        return Cow::Borrowed(tail);
    }
    Cow::Owned(format!("{path}{}{fragment}", parts.join("&")))
}

fn is_secret(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info_are_hidden() {
        assert_eq!(
            redact("mongodb://user:secret@dbhost:27017/lab?authSource=admin"),
            "mongodb://user:***@dbhost:27017/lab?authSource=admin"
        );
        assert_eq!(redact("redis://:s3cret@h:6379/2"), "redis://:***@h:6379/2");
        assert_eq!(redact("mongodb://a:b@c@h/db"), "mongodb://a:***@h/db");
    }

    #[test]
    fn a_user_without_password_is_kept() {
        assert_eq!(redact("mongodb://user@h/db"), "mongodb://user@h/db");
    }

    #[test]
    fn secret_query_parameters_are_hidden_and_others_kept() {
        assert_eq!(
            redact("mongodb://h/db?tls=true&Password=x&replicaSet=rs#frag"),
            "mongodb://h/db?tls=true&Password=***&replicaSet=rs#frag"
        );
        assert_eq!(redact("hf://o/d?token=hf_abc"), "hf://o/d?token=***");
    }

    #[test]
    fn locations_without_secrets_are_borrowed_unchanged() {
        for loc in [
            "/data/x.lmdb",
            "memory://name",
            "redis://h:6379/0",
            "lmdb:///a/b.lmdb#g",
            "mongodb://h/db?tls=true",
        ] {
            assert!(matches!(redact(loc), Cow::Borrowed(s) if s == loc), "{loc}");
        }
    }

    #[test]
    fn a_password_with_slashes_or_at_signs_does_not_leak() {
        // An unencoded '/' in a password ends the authority early for URL parsers; the
        // part before it is still user info and must not leak either.
        let r = redact("mongodb://u:pa@ss@h/db");
        assert!(!r.contains("pa@ss") && !r.contains("ss@h/"), "{r}");
    }
}
