//! The `origin_host` target: `Host` and `Origin` values against an allowlist, compared
//! with a reference built on the `url` crate.
//!
//! Input format: UTF-8 text (invalid bytes become U+FFFD), one setting per line, as a
//! keyword, one space and a value taken verbatim to the end of the line:
//!
//! - `port N`: the server's port (default 8080); the server binds 127.0.0.1;
//! - `host VALUE`: the `Host` header (absent when no such line);
//! - `origin VALUE`: the `Origin` header (absent when no such line);
//! - `allow VALUE`: one more allowed origin, as `--allowed-origin` takes it.
//!
//! Other lines are ignored, and the last `port`, `host` or `origin` line counts.
//!
//! Soundness: whatever the server accepts, the reference accepts too (names with an
//! `xn--` label are compared as ASCII text, as the server compares them). The `Host` then
//! names `localhost`, `127.0.0.1` or `[::1]`, and the `Origin` is `null` or has the
//! scheme, host and port of a loopback origin on the server's port or of an allowed
//! origin. The server may be stricter than the reference: it rejects `127.1` and
//! percent-encoded names, which the `url` crate normalises.
//!
//! Completeness, for values in canonical form only: the server accepts a `Host` of a
//! loopback name with no port or a decimal port. It accepts it without an `Origin`, with
//! its own `http://NAME:PORT` origin, or with an allowed origin in canonical form written
//! exactly as configured.

use std::time::Duration;

use url::Url;

use crate::config::HttpSettings;
use crate::transport::http::RequestPolicy;

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

const DEFAULT_PORT: u16 = 8080;

/// One decoded input.
#[derive(Debug, Default)]
struct Request {
    port: Option<u16>,
    host: Option<String>,
    origin: Option<String>,
    allowed: Vec<String>,
}

fn decode(text: &str) -> Request {
    let mut request = Request::default();
    for line in text.split('\n') {
        let Some((keyword, value)) = line.split_once(' ') else {
            continue;
        };
        match keyword {
            "port" => request.port = value.parse().ok(),
            "host" => request.host = Some(value.to_owned()),
            "origin" => request.origin = Some(value.to_owned()),
            "allow" => request.allowed.push(value.to_owned()),
            _ => {}
        }
    }
    request
}

/// Parses an origin with the `url` crate into (scheme, host, port), without a trailing
/// dot on the host. Anything but a bare http or https origin gives `None`.
///
/// The server does not decode punycode: it compares a name with an `xn--` label as ASCII
/// text, while the `url` crate refuses a label that is not valid punycode. A value the
/// crate refuses is parsed again with each `xn--` turned into `xn-z`, an ordinary label,
/// so that such names are compared as the server compares them.
fn reference_origin(value: &str) -> Option<(String, String, u16)> {
    parse_bare_origin(value).or_else(|| {
        let lowered = value.to_ascii_lowercase();
        lowered
            .contains("xn--")
            .then(|| parse_bare_origin(&lowered.replace("xn--", "xn-z")))
            .flatten()
    })
}

fn parse_bare_origin(value: &str) -> Option<(String, String, u16)> {
    let url = Url::parse(value.trim()).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !bare || !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.trim_end_matches('.').to_owned();
    Some((url.scheme().to_owned(), host, url.port_or_known_default()?))
}

/// Parses a `Host` value with the `url` crate into its host, without a trailing dot.
fn reference_host(value: &str) -> Option<String> {
    let url = Url::parse(&format!("http://{value}/")).ok()?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !bare {
        return None;
    }
    Some(url.host_str()?.trim_end_matches('.').to_owned())
}

/// Reports whether `value` is a decimal port number as a browser writes it: no sign, no
/// leading zero, at most 65535.
fn is_canonical_port(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|byte| byte.is_ascii_digit())
        && !(value.len() > 1 && value.starts_with('0'))
        && value.parse::<u16>().is_ok_and(|port| port > 0)
}

/// Reports whether `value` is `NAME` or `NAME:PORT` with a loopback `NAME` as listed.
fn is_canonical_loopback_host(value: &str) -> bool {
    LOOPBACK_HOSTS
        .iter()
        .any(|name| match value.strip_prefix(name) {
            Some("") => true,
            Some(rest) => rest.strip_prefix(':').is_some_and(is_canonical_port),
            None => false,
        })
}

/// Reports whether `value` is `SCHEME://NAME` or `SCHEME://NAME:PORT` as a browser serialises
/// an origin, with a loopback `NAME` or a lowercase DNS name whose last label starts
/// with a letter (so that no URL parser reads it as an IPv4 address).
fn is_canonical_origin(value: &str) -> bool {
    let Some(authority) = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
    else {
        return false;
    };
    let (name, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(is_canonical_port);
    let is_label = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    };
    let dns_name = name.split('.').all(is_label)
        && name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_lowercase()));
    port_ok && (dns_name || LOOPBACK_HOSTS.contains(&name))
}

/// Runs one `origin_host` input; panics when a property fails.
pub fn check_origin_host(data: &[u8]) {
    let request = decode(&String::from_utf8_lossy(data));
    let port = request.port.unwrap_or(DEFAULT_PORT).max(1);
    let settings = HttpSettings {
        host: "127.0.0.1".into(),
        port,
        auth_token: None,
        auth_token_file: None,
        allowed_origins: request.allowed.clone(),
        allowed_hosts: Vec::new(),
        max_clients: 1,
        client_idle_timeout: Duration::from_secs(1),
        ready_fd: None,
    };
    let Ok(policy) = RequestPolicy::new(&settings, port) else {
        // The server rejects this allowlist at start, so there is nothing to check.
        return;
    };
    let host = request.host.as_deref();
    let origin = request.origin.as_deref();
    let verdict = policy.check(host, origin, None);

    let canonical_host = host.is_some_and(is_canonical_loopback_host);
    let canonical_origin = match origin {
        None => true,
        Some(origin) => {
            let own = LOOPBACK_HOSTS
                .iter()
                .any(|name| origin == format!("http://{name}:{port}"));
            let allowed = request
                .allowed
                .iter()
                .any(|allowed| allowed == origin && is_canonical_origin(allowed));
            own || allowed
        }
    };
    if canonical_host && canonical_origin {
        assert!(
            verdict.is_ok(),
            "rejected Host {host:?} with Origin {origin:?} on port {port}, allowed {:?}: {:?}",
            request.allowed,
            verdict.err()
        );
    }
    if verdict.is_err() {
        return;
    }

    let host = host.unwrap_or_default();
    let named = reference_host(host).unwrap_or_else(|| panic!("accepted malformed Host {host:?}"));
    assert!(
        LOOPBACK_HOSTS.contains(&named.as_str()),
        "accepted Host {host:?}, which names {named:?}"
    );

    let Some(origin) = origin else {
        return;
    };
    if origin.trim() == "null" {
        return;
    }
    let presented =
        reference_origin(origin).unwrap_or_else(|| panic!("accepted malformed Origin {origin:?}"));
    let own = LOOPBACK_HOSTS
        .iter()
        .map(|name| ("http".to_owned(), (*name).to_owned(), port));
    let mut accepted = own.chain(
        request
            .allowed
            .iter()
            .filter_map(|value| reference_origin(value)),
    );
    assert!(
        accepted.any(|entry| entry == presented),
        "accepted Origin {origin:?} ({presented:?}), allowed {:?}",
        request.allowed
    );
}
