//! The worker's Redis credentials: its URL carries its ACL user and password
//! (`redis://streamgate-worker:<password>@host:port`, infra/redis/users.acl.template), so the
//! URL is never logged as given, and a refusal by Redis at start-up says what to fix.

use redis::{ErrorKind, RedisError};

/// The URL with its password (if any) replaced by `***`, for logs and errors.
pub fn redacted(url: &str) -> String {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map(|i| i + authority_start)
        .unwrap_or(url.len());
    // The last '@' of the authority ends the userinfo (a password may contain '@').
    let Some(at) = url[authority_start..authority_end]
        .rfind('@')
        .map(|i| i + authority_start)
    else {
        return url.to_string();
    };
    let userinfo = &url[authority_start..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => user,
        // `redis://<password>@host` is not a form redis-rs reads, but hide it all the same.
        None => "",
    };
    format!("{}{user}:***{}", &url[..authority_start], &url[at..])
}

/// How Redis refused us, if it did: no credentials (NOAUTH), wrong ones (WRONGPASS or an
/// authentication failure), or a user without a command or key the worker needs (NOPERM).
fn refusal(e: &RedisError) -> Option<&'static str> {
    let text = e.to_string();
    let code = e.code().unwrap_or_default();
    if code == "NOAUTH" || text.contains("NOAUTH") {
        Some("it requires a user and password, and the URL has none")
    } else if code == "WRONGPASS"
        || text.contains("WRONGPASS")
        || e.kind() == ErrorKind::AuthenticationFailed
    {
        Some("it does not accept the URL's user and password")
    } else if code == "NOPERM" || text.contains("NOPERM") {
        Some("the URL's user lacks a command or key the worker needs (compare its ACL with infra/redis/users.acl.template)")
    } else {
        None
    }
}

/// Adds what to do to a start-up error that is Redis refusing the worker's credentials.
pub fn explain(err: anyhow::Error, url: &str) -> anyhow::Error {
    let Some(why) = err
        .chain()
        .filter_map(|cause| cause.downcast_ref::<RedisError>())
        .find_map(refusal)
    else {
        return err;
    };
    err.context(format!(
        "Redis at {} refused the worker: {why}. Give the worker's ACL user and password in \
         STREAMGATE_REDIS_URL (redis://streamgate-worker:<password>@host:port; scripts/up does, \
         from <state dir>/secrets.env); keep it out of --redis, which `ps` shows",
        redacted(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        for (url, shown) in [
            (
                "redis://streamgate-worker:s3cret@127.0.0.1:6390",
                "redis://streamgate-worker:***@127.0.0.1:6390",
            ),
            ("redis://:s3cret@host:1/0", "redis://:***@host:1/0"),
            ("redis://user:p@ss@host", "redis://user:***@host"),
            ("redis://s3cret@host", "redis://:***@host"),
            ("redis://127.0.0.1:6390", "redis://127.0.0.1:6390"),
            ("redis://host/0?x=a@b", "redis://host/0?x=a@b"),
            ("host:6379", "host:6379"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn refusals_are_explained_and_other_errors_left_alone() {
        // What redis-rs makes of the server's `-NOAUTH Authentication required.`
        let noauth =
            redis::make_extension_error("NOAUTH".into(), Some("Authentication required.".into()));
        let err = anyhow::Error::from(noauth).context("cannot create the consumer group");
        let text = format!("{:#}", explain(err, "redis://u:pw@h:1"));
        assert!(text.contains("refused the worker"), "{text}");
        assert!(text.contains("redis://u:***@h:1"), "{text}");
        assert!(!text.contains("pw@"), "{text}");

        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let text = format!("{:#}", explain(io.into(), "redis://h:1"));
        assert!(!text.contains("refused the worker"), "{text}");
    }
}
