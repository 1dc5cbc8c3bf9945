//! Arbitrary `Host` and `Origin` values against an allowlist. The server's check may be
//! stricter than a reference built on the `url` crate, never looser: whatever it accepts
//! names an allowed host, and an allowed scheme, host and port.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_terminal_server::config::HttpSettings;
use mcp_terminal_server::transport::http::RequestPolicy;
use url::Url;

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Values close to the accepted ones, combined with arbitrary text by the fuzzer.
const SEEDS: [&str; 12] = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "LOCALHOST.",
    "evil.example",
    "127.0.0.1.evil.example",
    "evil@127.0.0.1",
    "[::1%25lo]",
    "xn--80ak6aa92e.com",
    "localhost%2e",
    "ide.example",
    "",
];

#[derive(Arbitrary, Debug)]
enum Part {
    Seed(u8),
    Text(String),
}

impl Part {
    fn text(self) -> String {
        match self {
            Part::Seed(index) => SEEDS[usize::from(index) % SEEDS.len()].to_owned(),
            Part::Text(text) => text,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    port: u16,
    host: Part,
    host_port: Option<String>,
    origin: Option<(bool, Part, Option<String>, String)>,
    allowed_origins: Vec<(bool, Part, Option<u16>)>,
}

/// Parses an origin with the `url` crate into (scheme, host, port), without a trailing
/// dot on the host. Anything but a bare http or https origin gives `None`.
fn reference_origin(value: &str) -> Option<(String, String, u16)> {
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

fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

fuzz_target!(|input: Input| {
    let port = input.port.max(1);
    let allowed: Vec<String> = input
        .allowed_origins
        .into_iter()
        .map(|(https, host, port)| match port {
            Some(port) => format!("{}://{}:{port}", scheme(https), host.text()),
            None => format!("{}://{}", scheme(https), host.text()),
        })
        .collect();
    let settings = HttpSettings {
        host: "127.0.0.1".into(),
        port,
        auth_token: None,
        auth_token_file: None,
        allowed_origins: allowed.clone(),
        allowed_hosts: Vec::new(),
        max_clients: 1,
        client_idle_timeout: Duration::from_secs(1),
        ready_fd: None,
    };
    let Ok(policy) = RequestPolicy::new(&settings, port) else {
        return;
    };
    let host = match input.host_port {
        Some(suffix) => format!("{}:{suffix}", input.host.text()),
        None => input.host.text(),
    };
    let origin = input.origin.map(|(https, host, port, path)| match port {
        Some(port) => format!("{}://{}:{port}{path}", scheme(https), host.text()),
        None => format!("{}://{}{path}", scheme(https), host.text()),
    });
    if policy.check(Some(&host), origin.as_deref(), None).is_err() {
        return;
    }

    let reference_host = Url::parse(&format!("http://{host}/"))
        .ok()
        .filter(|url| url.username().is_empty() && url.password().is_none() && url.path() == "/")
        .and_then(|url| {
            url.host_str()
                .map(|name| name.trim_end_matches('.').to_owned())
        });
    let reference_host =
        reference_host.unwrap_or_else(|| panic!("accepted malformed Host {host:?}"));
    assert!(
        LOOPBACK_HOSTS.contains(&reference_host.as_str()),
        "accepted Host {host:?}, which names {reference_host:?}"
    );

    let Some(origin) = origin else {
        return;
    };
    if origin.trim() == "null" {
        return;
    }
    let presented =
        reference_origin(&origin).unwrap_or_else(|| panic!("accepted malformed Origin {origin:?}"));
    let own = LOOPBACK_HOSTS
        .iter()
        .map(|name| ("http".to_owned(), name.to_string(), port));
    let mut accepted = own.chain(allowed.iter().filter_map(|value| reference_origin(value)));
    assert!(
        accepted.any(|entry| entry == presented),
        "accepted Origin {origin:?} ({presented:?}), allowed {allowed:?}"
    );
});
