//! MCP over streamable HTTP: rmcp's service at `/mcp`, behind the server's own gate.
//!
//! Every request to `/mcp` passes the gate before rmcp reads its body, in this order:
//! `Host` (against DNS rebinding), `Origin` (against pages in a browser), the bearer
//! token, the declared body size, and the bound on open MCP sessions. A rejected request
//! creates nothing and logs one line with the reason. `GET /healthz` skips the gate: it
//! reveals only the version and two counts, and supervisors probe it by address.
//!
//! rmcp builds a [`TerminalServer`] per MCP session, or per stateless request. Each one
//! shares the one [`SessionTable`], so PTY sessions outlive MCP sessions, their expiry and
//! reconnects.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::config::{AuthToken, HttpSettings};
use crate::mcp::{TerminalServer, ToolSettings};
use crate::session::table::SessionTable;
use crate::transport::write_stall::{StallLimitedListener, WRITE_STALL_LIMIT};

/// Largest request body accepted on `/mcp`. Larger ones get 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long open connections get to finish after a shutdown signal.
const DRAIN_BOUND: Duration = Duration::from_secs(3);
/// Wrong tokens tolerated within [`FAILURE_WINDOW`] before further wrong ones get 429.
const MAX_TOKEN_FAILURES: usize = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(10);
const SESSION_ID_HEADER: &str = "mcp-session-id";

/// An error that kept the HTTP transport from starting or stopped it.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot resolve --host {host:?}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error(
        "missing bearer token for --host {host:?} ({address}): an address outside loopback \
         needs one, so set MCP_AUTH_TOKEN or pass --auth-token-file PATH, or bind \
         --host 127.0.0.1"
    )]
    TokenRequired { host: String, address: SocketAddr },
    #[error("cannot bind {host:?} port {port}: {source}")]
    Bind {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("invalid allowed host {value:?}: expected a name or address, optionally with :port")]
    InvalidAllowedHost { value: String },
    #[error(
        "invalid allowed origin {value:?}: expected scheme://host[:port], such as http://ide.example:3000, or null"
    )]
    InvalidAllowedOrigin { value: String },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Serves MCP over HTTP until `shutdown` fires, then stops accepting, lets open
/// connections finish for a bounded time, and returns. Closing PTY sessions is the
/// caller's job.
pub async fn serve(
    settings: &HttpSettings,
    table: Arc<SessionTable>,
    tools: Arc<ToolSettings>,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((settings.host.as_str(), settings.port))
            .await
            .map_err(|source| HttpError::Resolve {
                host: settings.host.clone(),
                source,
            })?
            .collect();
    if settings.auth_token.is_none()
        && let Some(address) = addresses.iter().find(|a| !a.ip().is_loopback())
    {
        return Err(HttpError::TokenRequired {
            host: settings.host.clone(),
            address: *address,
        });
    }
    if let Some(path) = &settings.auth_token_file {
        warn_if_token_file_is_shared(path);
    }
    let listener = tokio::net::TcpListener::bind(addresses.as_slice())
        .await
        .map_err(|source| HttpError::Bind {
            host: settings.host.clone(),
            port: settings.port,
            source,
        })?;
    let local = listener.local_addr().map_err(HttpError::Serve)?;
    let policy = RequestPolicy::new(settings, local.port())?;

    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(settings.client_idle_timeout);
    let sessions = Arc::new(manager);
    // The gate in front checks Host and Origin with the server's own rules, so rmcp's
    // Host list is cleared rather than kept as a second list that could disagree.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(shutdown.child_token());
    let factory_table = table.clone();
    let service = StreamableHttpService::new(
        move || Ok(TerminalServer::new(factory_table.clone(), tools.clone())),
        sessions.clone(),
        config,
    );
    let gate = Gate {
        policy: Arc::new(policy),
        sessions: sessions.clone(),
        max_clients: settings.max_clients,
        failures: Arc::new(Mutex::new(FailureWindow::default())),
    };
    let router = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gate, check_request))
        .route("/healthz", get(health))
        .with_state(Health { table, sessions });

    tracing::info!(
        transport = "http",
        address = %local,
        port = local.port(),
        url = %format!("http://{local}/mcp"),
        "listening"
    );
    crate::readiness::notify_ready(settings.ready_fd, &format!("listening on {local}"));
    if settings.auth_token.is_none() {
        tracing::warn!(
            transport = "http",
            "no bearer token is set: every local user can reach /mcp; set MCP_AUTH_TOKEN or --auth-token-file on shared hosts"
        );
    }

    let stop = shutdown.clone();
    let mut server = tokio::spawn(async move {
        axum::serve(
            StallLimitedListener::new(listener, WRITE_STALL_LIMIT),
            router,
        )
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    });
    tokio::select! {
        result = &mut server => return finish(result),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(DRAIN_BOUND, &mut server).await {
        Ok(result) => finish(result),
        Err(_) => {
            tracing::info!(
                transport = "http",
                "connections still open after the drain bound; closing them"
            );
            server.abort();
            Ok(())
        }
    }
}

fn finish(
    result: Result<Result<(), std::io::Error>, tokio::task::JoinError>,
) -> Result<(), HttpError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(HttpError::Serve(error)),
        Err(error) => Err(HttpError::Serve(std::io::Error::other(error))),
    }
}

/// Warns when the token file can be read by users other than its owner.
fn warn_if_token_file_is_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "the auth token file is readable by other users; chmod 600 it"
            );
        }
    }
}

#[derive(Clone)]
struct Health {
    table: Arc<SessionTable>,
    sessions: Arc<LocalSessionManager>,
}

async fn health(State(health): State<Health>) -> impl IntoResponse {
    let mcp_sessions = health.sessions.sessions.read().await.len();
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "sessions": health.table.len(),
        "mcp_sessions": mcp_sessions,
    }))
}

/// State of the gate in front of `/mcp`.
#[derive(Clone)]
struct Gate {
    policy: Arc<RequestPolicy>,
    /// rmcp's table of MCP sessions; read to enforce `max_clients`.
    sessions: Arc<LocalSessionManager>,
    max_clients: usize,
    /// Recent wrong-token requests, shared by every connection.
    failures: Arc<Mutex<FailureWindow>>,
}

async fn check_request(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let verdict = gate.policy.check(
        header_text(headers, header::HOST),
        header_text(headers, header::ORIGIN),
        header_text(headers, header::AUTHORIZATION),
    );
    if let Err(rejection) = verdict {
        let throttled = matches!(rejection, Rejection::WrongToken | Rejection::MissingToken)
            && gate
                .failures
                .lock()
                .map(|mut window| window.record(Instant::now()))
                .unwrap_or(false);
        tracing::warn!(
            transport = "http",
            method = %request.method(),
            reason = %rejection,
            throttled,
            "request rejected"
        );
        return rejection.into_response(throttled);
    }

    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        tracing::warn!(
            transport = "http",
            bytes = declared,
            reason = "body too large",
            "request rejected"
        );
        return too_large();
    }

    let opens_session =
        request.method() == Method::POST && !headers.contains_key(SESSION_ID_HEADER);
    if opens_session && gate.sessions.sessions.read().await.len() >= gate.max_clients {
        // At the bound, only an initialize request is rejected: stateless requests and
        // discovery open no MCP session. Reading the body here is bounded by the limit.
        // NOTE: the count is read, not reserved, so initialize requests that arrive together
        // just below the bound can each pass and exceed it by their number.
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return too_large();
        };
        if is_initialize(&bytes) {
            tracing::warn!(
                transport = "http",
                max_clients = gate.max_clients,
                reason = "too many MCP sessions",
                "request rejected"
            );
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many MCP sessions: {} are open, the limit set by --max-clients; \
                     close one (HTTP DELETE with its Mcp-Session-Id) or retry later",
                    gate.max_clients
                ),
            );
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let deletes = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    // rmcp has already closed the MCP session when it returns 202 for a DELETE. Clients
    // such as the Python SDK expect 200 or 204 for a completed termination.
    if deletes && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    // A value that is not visible ASCII cannot match any rule; keep it as a value that
    // fails parsing rather than treating it as absent.
    headers
        .get(name)
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
}

fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    serde_json::from_slice::<Method<'_>>(body).is_ok_and(|m| m.method == Some("initialize"))
}

fn too_large() -> Response {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The reason the gate rejected a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed Host header {0:?}")]
    MalformedHost(String),
    #[error("Host {0:?} is not accepted (add it with --allowed-host)")]
    ForeignHost(String),
    #[error("Origin {0:?} is not accepted (add it with --allowed-origin)")]
    ForeignOrigin(String),
    #[error("missing bearer token")]
    MissingToken,
    #[error("wrong bearer token")]
    WrongToken,
}

impl Rejection {
    fn into_response(self, throttled: bool) -> Response {
        match self {
            // A malformed Host is rejected like a foreign one because neither names this server.
            Rejection::MalformedHost(_)
            | Rejection::ForeignHost(_)
            | Rejection::ForeignOrigin(_) => {
                plain(StatusCode::FORBIDDEN, format!("forbidden: {self}"))
            }
            Rejection::MissingToken | Rejection::WrongToken if throttled => {
                let mut response = plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests with a wrong bearer token; retry later".into(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                response
            }
            Rejection::MissingToken | Rejection::WrongToken => {
                let mut response = plain(
                    StatusCode::UNAUTHORIZED,
                    format!("unauthorized: {self}; send Authorization: Bearer <token>"),
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
        }
    }
}

/// The rules a request must pass: accepted hosts and origins, and the token.
#[derive(Debug)]
pub struct RequestPolicy {
    hosts: Vec<HostRule>,
    origins: Vec<Origin>,
    token: Option<AuthToken>,
}

/// An accepted `Host`: a lowercase name or address (IPv6 without brackets), and a port,
/// or `None` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    host: String,
    port: Option<u16>,
}

/// A browser origin, normalised: lowercase scheme and host, explicit port.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: u16,
    },
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl RequestPolicy {
    /// Builds the rules: loopback hosts on any port, the bound host when it is a specific
    /// address or name, the server's own loopback origins on `port`, plus the extra hosts
    /// and origins of `settings`.
    pub fn new(settings: &HttpSettings, port: u16) -> Result<Self, HttpError> {
        let mut hosts: Vec<HostRule> = LOOPBACK_NAMES
            .iter()
            .map(|name| HostRule {
                host: (*name).to_owned(),
                port: None,
            })
            .collect();
        let bound = settings.host.trim_matches(['[', ']']).to_ascii_lowercase();
        if !matches!(bound.as_str(), "0.0.0.0" | "::" | "") {
            hosts.push(HostRule {
                host: bound,
                port: Some(port),
            });
        }
        for value in &settings.allowed_hosts {
            let (host, port) =
                parse_authority(value).ok_or_else(|| HttpError::InvalidAllowedHost {
                    value: value.clone(),
                })?;
            hosts.push(HostRule { host, port });
        }
        let mut origins: Vec<Origin> = LOOPBACK_NAMES
            .iter()
            .map(|name| Origin::Tuple {
                scheme: "http".into(),
                host: (*name).to_owned(),
                port,
            })
            .collect();
        for value in &settings.allowed_origins {
            origins.push(
                parse_origin(value).ok_or_else(|| HttpError::InvalidAllowedOrigin {
                    value: value.clone(),
                })?,
            );
        }
        Ok(Self {
            hosts,
            origins,
            token: settings.auth_token.clone(),
        })
    }

    /// Checks one request's headers. A request without `Origin` (a client that is not a
    /// browser) passes on its `Host` and token alone.
    pub fn check(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<(), Rejection> {
        let host = host.unwrap_or_default();
        let (name, port) =
            parse_authority(host).ok_or_else(|| Rejection::MalformedHost(host.to_owned()))?;
        if !self
            .hosts
            .iter()
            .any(|rule| rule.host == name && rule.port.is_none_or(|p| Some(p) == port))
        {
            return Err(Rejection::ForeignHost(host.to_owned()));
        }
        if let Some(origin) = origin {
            let accepted =
                parse_origin(origin).is_some_and(|parsed| self.origins.contains(&parsed));
            if !accepted {
                return Err(Rejection::ForeignOrigin(origin.to_owned()));
            }
        }
        if let Some(token) = &self.token {
            let presented = authorization.and_then(bearer_token);
            match presented {
                None => return Err(Rejection::MissingToken),
                Some(presented) if !constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
                    return Err(Rejection::WrongToken);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Extracts the token of an `Authorization: Bearer <token>` value (case-insensitive scheme).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let difference = (0..longest).fold(a.len() ^ b.len(), |acc, i| {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        acc | usize::from(x ^ y)
    });
    difference == 0
}

/// Parses `host[:port]` as a `Host` header carries it: a name or IPv4 address, or an
/// IPv6 address in brackets. Returns the lowercase host without brackets or trailing dot.
/// Userinfo, paths, empty values and bare IPv6 addresses are malformed.
fn parse_authority(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        // Only a valid IPv6 address may sit inside brackets, so `[::1.]` is malformed.
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return None;
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (inside, port)
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let host = match value.starts_with('[') {
        true => host,
        false => host.strip_suffix('.').unwrap_or(host),
    };
    let name_ok = !host.is_empty()
        && (value.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'));
    if !name_ok {
        return None;
    }
    // A name whose last label is a number is an IPv4 address to URL parsers (WHATWG URL
    // standard), so `i.5` or `127.1` is malformed unless it is a dotted-quad address.
    let last_label = host.rsplit('.').next().unwrap_or_default();
    let numeric = !last_label.is_empty()
        && (last_label.bytes().all(|byte| byte.is_ascii_digit())
            || last_label.to_ascii_lowercase().starts_with("0x"));
    if !value.starts_with('[') && numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Parses an `Origin` value: `null`, or `scheme://host[:port]` with scheme http or https;
/// a missing port becomes the scheme's default.
fn parse_origin(value: &str) -> Option<Origin> {
    let value = value.trim();
    if value == "null" {
        return Some(Origin::Null);
    }
    let (scheme, authority) = value.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (host, port) = parse_authority(authority)?;
    Some(Origin::Tuple {
        scheme,
        host,
        port: port.unwrap_or(default_port),
    })
}

/// Wrong-token requests within the last [`FAILURE_WINDOW`].
#[derive(Debug, Default)]
struct FailureWindow {
    recent: VecDeque<Instant>,
}

impl FailureWindow {
    /// Records one failure at `now` and reports whether the window was already full, so
    /// the request gets 429.
    fn record(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) > FAILURE_WINDOW)
        {
            self.recent.pop_front();
        }
        let full = self.recent.len() >= MAX_TOKEN_FAILURES;
        self.recent.push_back(now);
        if self.recent.len() > MAX_TOKEN_FAILURES {
            self.recent.pop_front();
        }
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(token: Option<&str>) -> HttpSettings {
        HttpSettings {
            host: "127.0.0.1".into(),
            port: 0,
            auth_token: token.map(AuthToken::new),
            auth_token_file: None,
            allowed_origins: vec![],
            allowed_hosts: vec![],
            max_clients: 4,
            client_idle_timeout: Duration::from_secs(300),
            ready_fd: None,
        }
    }

    fn policy(token: Option<&str>) -> RequestPolicy {
        RequestPolicy::new(&settings(token), 8080).unwrap()
    }

    #[test]
    fn loopback_hosts_pass_on_any_port() {
        let policy = policy(None);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST:9",
            "localhost.",
            "127.0.0.1",
        ] {
            assert_eq!(policy.check(Some(host), None, None), Ok(()), "{host}");
        }
    }

    #[test]
    fn rebinding_hosts_are_rejected() {
        let policy = policy(None);
        for host in [
            "evil.example:8080",
            "localhost.evil.example:8080",
            "127.0.0.1.rebind.example:8080",
        ] {
            assert_eq!(
                policy.check(Some(host), None, None),
                Err(Rejection::ForeignHost(host.into())),
                "{host}"
            );
        }
        for host in [
            "",
            "evil@127.0.0.1:8080",
            "127.0.0.1:8080.evil.example",
            "::1",
            "[::1",
            "127.0.0.1:80x",
            "a b",
            "[::1.]:8080",
            "i.5:8080",
            "127.1:8080",
            "0x7f.1:8080",
            "[::1%25lo]:8080",
            "[.]:8080",
        ] {
            assert_eq!(
                policy.check(Some(host), None, None),
                Err(Rejection::MalformedHost(host.into())),
                "{host}"
            );
        }
        assert_eq!(
            policy.check(None, None, None),
            Err(Rejection::MalformedHost(String::new()))
        );
    }

    #[test]
    fn only_the_servers_own_origins_pass_by_default() {
        let policy = policy(None);
        let host = Some("127.0.0.1:8080");
        for origin in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(policy.check(host, Some(origin), None), Ok(()), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example:8080",
            "http://127.0.0.1.evil.example:8080",
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "garbage",
        ] {
            assert_eq!(
                policy.check(host, Some(origin), None),
                Err(Rejection::ForeignOrigin(origin.into())),
                "{origin}"
            );
        }
    }

    #[test]
    fn configured_hosts_and_origins_are_added() {
        let mut settings = settings(None);
        settings.allowed_hosts = vec!["mcp.internal".into(), "gw.example:9000".into()];
        settings.allowed_origins = vec!["http://ide.example".into(), "null".into()];
        let policy = RequestPolicy::new(&settings, 8080).unwrap();
        assert_eq!(policy.check(Some("mcp.internal:1234"), None, None), Ok(()));
        assert_eq!(policy.check(Some("gw.example:9000"), None, None), Ok(()));
        assert!(policy.check(Some("gw.example:9001"), None, None).is_err());
        let host = Some("localhost:8080");
        assert_eq!(policy.check(host, Some("http://ide.example"), None), Ok(()));
        assert_eq!(
            policy.check(host, Some("http://ide.example:80"), None),
            Ok(())
        );
        assert_eq!(policy.check(host, Some("null"), None), Ok(()));
        assert!(
            policy
                .check(host, Some("http://evil.example"), None)
                .is_err()
        );
    }

    #[test]
    fn bad_configured_values_are_errors() {
        let mut bad_host = settings(None);
        bad_host.allowed_hosts = vec!["user@host".into()];
        assert!(matches!(
            RequestPolicy::new(&bad_host, 1),
            Err(HttpError::InvalidAllowedHost { .. })
        ));
        let mut bad_origin = settings(None);
        bad_origin.allowed_origins = vec!["ftp://x".into()];
        assert!(matches!(
            RequestPolicy::new(&bad_origin, 1),
            Err(HttpError::InvalidAllowedOrigin { .. })
        ));
    }

    #[test]
    fn a_specific_bind_address_is_an_accepted_host_on_its_port() {
        let mut settings = settings(Some("t"));
        settings.host = "192.0.2.7".into();
        let policy = RequestPolicy::new(&settings, 8080).unwrap();
        let auth = Some("Bearer t");
        assert_eq!(policy.check(Some("192.0.2.7:8080"), None, auth), Ok(()));
        assert!(policy.check(Some("192.0.2.7:8081"), None, auth).is_err());
    }

    #[test]
    fn token_is_required_when_set() {
        let policy = policy(Some("s3cret"));
        let host = Some("127.0.0.1:8080");
        assert_eq!(policy.check(host, None, Some("Bearer s3cret")), Ok(()));
        assert_eq!(policy.check(host, None, Some("bearer  s3cret ")), Ok(()));
        assert_eq!(policy.check(host, None, None), Err(Rejection::MissingToken));
        assert_eq!(
            policy.check(host, None, Some("Basic czNjcmV0")),
            Err(Rejection::MissingToken)
        );
        assert_eq!(
            policy.check(host, None, Some("Bearer s3creT")),
            Err(Rejection::WrongToken)
        );
        assert_eq!(
            policy.check(host, None, Some("Bearer s3cret-longer")),
            Err(Rejection::WrongToken)
        );
        // Host and Origin are checked whether or not a token is set.
        assert!(matches!(
            policy.check(Some("evil.example"), None, Some("Bearer s3cret")),
            Err(Rejection::ForeignHost(_))
        ));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn failure_window_throttles_after_the_limit_and_forgets_old_failures() {
        let mut window = FailureWindow::default();
        let start = Instant::now();
        for i in 0..MAX_TOKEN_FAILURES {
            assert!(
                !window.record(start + Duration::from_millis(i as u64)),
                "{i}"
            );
        }
        assert!(window.record(start + Duration::from_secs(1)));
        assert!(!window.record(start + FAILURE_WINDOW + Duration::from_secs(2)));
    }

    #[test]
    fn initialize_is_recognised_in_a_body() {
        assert!(is_initialize(
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        assert!(!is_initialize(b"not json"));
    }
}
