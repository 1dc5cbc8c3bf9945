//! Command-line flags and environment variables, and the validated settings built from them.
//!
//! [`Cli`] is what clap parses; [`Settings::from_cli`] checks every value and converts it
//! into the units the rest of the crate uses, so no other module re-validates configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::session::limits::{RLIMIT_FORMAT, SessionRlimits};

/// Largest accepted value for any duration setting, in seconds (one day).
const MAX_DURATION_SECS: f64 = 86_400.0;

/// Raw command-line flags and their environment variables, before validation.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-terminal-server",
    version,
    about = "MCP server that gives AI agents persistent terminal sessions",
    long_about = "MCP server that gives AI agents persistent terminal sessions.\n\n\
        An agent opens a pseudo-terminal session, types into it, reads a clean text \
        rendering of the screen, and closes it. Sessions live on between tool calls. \
        By default the server speaks MCP over stdio: an MCP client starts it as a child \
        process and exchanges JSON-RPC on its standard input and output. With --http it \
        serves MCP streamable HTTP at /mcp instead. Logs go to standard error.",
    after_help = "Durations are in seconds and accept fractions (for example 0.5).\n\
        Each flag can also be set by the environment variable shown with it; a flag wins \
        over its variable. RUST_LOG, when set, overrides --debug and --verbose.\n\n\
        Exit status: 0 after a clean shutdown (end of standard input, SIGTERM or SIGINT); \
        2 for a configuration error, which a restart does not fix; 1 for a runtime \
        failure, such as a port already in use, which a restart may fix."
)]
pub struct Cli {
    /// Default and maximum wait for any tool call that waits for output, in seconds.
    #[arg(
        long,
        env = "MCP_COMMAND_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub command_timeout: String,

    /// Shell for sessions opened without `argv` [default: /bin/bash if present, else $SHELL,
    /// else /bin/sh].
    #[arg(long, env = "MCP_SHELL", value_name = "PATH")]
    pub shell: Option<PathBuf>,

    /// Close a session after this long without tool calls or output, in seconds; 0 disables.
    #[arg(
        long,
        env = "MCP_IDLE_TIMEOUT",
        default_value = "1800",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub idle_timeout: String,

    /// Maximum number of sessions open at once (exited sessions that are not closed count).
    #[arg(long, env = "MCP_MAX_SESSIONS", default_value_t = 32, value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_sessions: u32,

    /// History rows the terminal emulator keeps above the screen of each session; fewer
    /// on wide terminals, so history rows × columns stays within 1,000,000 cells.
    #[arg(long, env = "MCP_SCROLLBACK", default_value_t = 10_000, value_name = "ROWS",
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub scrollback: u32,

    /// Bytes of plain-text history kept per session for rows older than the emulator's
    /// history.
    #[arg(long, env = "MCP_TRANSCRIPT_BYTES", default_value_t = 1_048_576, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(0..=1_073_741_824))]
    pub transcript_bytes: u64,

    /// Seconds between the HUP, TERM and KILL steps when a session's processes are ended.
    #[arg(
        long,
        env = "MCP_KILL_GRACE",
        default_value = "2",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub kill_grace: String,

    /// Extra variables of the server's environment passed to sessions, comma-separated
    /// (the rest of the server's environment is not passed, see the README).
    #[arg(
        long,
        env = "MCP_PASS_ENV",
        value_delimiter = ',',
        value_name = "NAME[,NAME...]"
    )]
    pub pass_env: Vec<String>,

    /// Resource limit set in every session program and never on the server, as
    /// NAME=VALUE (soft and hard); repeat the flag for several. NAME is as (address
    /// space), fsize (file size), core (core file size), all in bytes with an optional K,
    /// M or G; cpu (seconds of CPU time); nofile (open files); nproc (processes of the
    /// user). The variable takes a comma-separated list.
    #[arg(
        long,
        env = "MCP_SESSION_RLIMITS",
        value_delimiter = ',',
        value_name = "NAME=VALUE"
    )]
    pub session_rlimit: Vec<String>,

    /// Also offer the tools `persistent_shell` and `session_manager`, under the names and
    /// parameters of the Go server this one replaces, so existing prompts keep working.
    #[arg(long, env = "MCP_LEGACY_TOOLS")]
    pub legacy_tools: bool,

    /// Serve MCP over streamable HTTP at `/mcp` instead of stdio.
    #[arg(long)]
    pub http: bool,

    /// Address to bind with `--http`. Any address outside loopback needs a bearer token.
    #[arg(
        long,
        env = "MCP_HOST",
        default_value = "127.0.0.1",
        value_name = "ADDRESS"
    )]
    pub host: String,

    /// Port to bind with `--http`; 0 picks a free port and logs it.
    #[arg(long, env = "MCP_PORT", default_value_t = 8080, value_name = "PORT")]
    pub port: u16,

    /// File holding the bearer token every `/mcp` request must carry (surrounding
    /// whitespace is ignored). The token can also come from MCP_AUTH_TOKEN; the file wins.
    #[arg(long, value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,

    /// Browser origins accepted on HTTP besides the server's own loopback origins,
    /// comma-separated, as `scheme://host[:port]`.
    #[arg(
        long,
        env = "MCP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN[,ORIGIN...]"
    )]
    pub allowed_origin: Vec<String>,

    /// `Host` header values accepted on HTTP besides `localhost`, `127.0.0.1` and `[::1]`,
    /// comma-separated, as `name` (any port) or `name:port`.
    #[arg(
        long,
        env = "MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[,HOST...]"
    )]
    pub allowed_host: Vec<String>,

    /// MCP sessions (initialize handshakes) open at once over HTTP; further ones get 503.
    #[arg(long, env = "MCP_MAX_CLIENTS", default_value_t = 64, value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_clients: u32,

    /// Seconds an MCP session over HTTP may stay idle before it expires and its client
    /// must initialize again; terminal sessions are not affected.
    #[arg(
        long,
        env = "MCP_CLIENT_IDLE_TIMEOUT",
        default_value = "300",
        value_name = "SECONDS"
    )]
    pub client_idle_timeout: String,

    /// Log line format on standard error: `text` (one plain line per event) or `json`
    /// (one JSON object per line, for log collectors).
    #[arg(
        long,
        env = "MCP_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    /// With `--http`, a file descriptor that gets a newline, and is then closed, once the
    /// server is listening. This is s6's readiness notification: put the same number in
    /// the service's `notification-fd` file. Under systemd, NOTIFY_SOCKET is used instead.
    #[arg(long, env = "MCP_READY_FD", value_name = "FD",
          value_parser = clap::value_parser!(i32).range(3..))]
    pub ready_fd: Option<i32>,

    /// Append one JSON line per tool call to this file (created with mode 0600): time,
    /// tool, session id, principal, arguments, byte counts and outcome. Text typed while
    /// the terminal hides input is recorded as redacted.
    #[arg(long, env = "MCP_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// Log at debug level (one line per tool call).
    #[arg(long, conflicts_with = "verbose")]
    pub debug: bool,

    /// Log at trace level (byte counts; terminal contents are never logged above trace).
    #[arg(long)]
    pub verbose: bool,
}

/// A configuration value that failed validation.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {name} {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "shell {path:?} is not an executable file: set MCP_SHELL or --shell to a shell such as /bin/bash"
    )]
    ShellNotExecutable { path: PathBuf },
    #[error("cannot read the auth token file {path:?}: {source}")]
    TokenFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the auth token from {source_name} is empty: put a long random string there, for example the output of `openssl rand -base64 32`"
    )]
    TokenEmpty { source_name: String },
}

/// Log line format, from `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How much the server logs, from the `--debug` and `--verbose` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Debug,
    Trace,
}

/// Validated settings, with units in the field names.
#[derive(Debug, Clone)]
pub struct Settings {
    pub command_timeout: Duration,
    pub shell: PathBuf,
    /// `None` when idle reaping is disabled.
    pub idle_timeout: Option<Duration>,
    pub max_sessions: usize,
    pub scrollback_rows: usize,
    pub transcript_bytes: usize,
    pub kill_grace: Duration,
    pub pass_env: BTreeSet<String>,
    pub session_rlimits: SessionRlimits,
    pub legacy_tools: bool,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// `None` serves stdio.
    pub http: Option<HttpSettings>,
    /// File that records every tool call; `None` records nothing.
    pub audit_log: Option<PathBuf>,
}

/// Settings of the streamable HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Address to bind: an IP address or a host name.
    pub host: String,
    pub port: u16,
    pub auth_token: Option<AuthToken>,
    /// Where the token came from, when it came from a file (for the permission check).
    pub auth_token_file: Option<PathBuf>,
    /// Extra accepted origins, as given.
    pub allowed_origins: Vec<String>,
    /// Extra accepted `Host` values, as given.
    pub allowed_hosts: Vec<String>,
    pub max_clients: usize,
    /// Idle time after which rmcp ends an MCP session.
    pub client_idle_timeout: Duration,
    /// Open descriptor to write a newline to once listening (s6 readiness), checked open.
    pub ready_fd: Option<i32>,
}

/// A bearer token. Its `Debug` output hides the value, so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<hidden>)")
    }
}

/// Reads the bearer token: the file named by `--auth-token-file` when given, else
/// `env_token` (the value of MCP_AUTH_TOKEN). Surrounding whitespace is removed; an empty
/// token is an error, not "no token".
fn read_auth_token(
    file: Option<&Path>,
    env_token: Option<String>,
) -> Result<Option<AuthToken>, ConfigError> {
    let (value, source_name) = match (file, env_token) {
        (Some(path), _) => {
            let value = std::fs::read_to_string(path).map_err(|source| {
                ConfigError::TokenFileUnreadable {
                    path: path.to_owned(),
                    source,
                }
            })?;
            (value, format!("--auth-token-file {}", path.display()))
        }
        (None, Some(value)) => (value, "MCP_AUTH_TOKEN".to_owned()),
        (None, None) => return Ok(None),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::TokenEmpty { source_name });
    }
    Ok(Some(AuthToken::new(trimmed)))
}

impl Settings {
    /// Validates the parsed flags and resolves defaults that depend on the machine.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let command_timeout = parse_seconds(
            "--command-timeout (MCP_COMMAND_TIMEOUT)",
            &cli.command_timeout,
            false,
        )?;
        let idle_timeout =
            parse_seconds("--idle-timeout (MCP_IDLE_TIMEOUT)", &cli.idle_timeout, true)?;
        let kill_grace = parse_seconds("--kill-grace (MCP_KILL_GRACE)", &cli.kill_grace, true)?;
        let shell = match &cli.shell {
            Some(path) => path.clone(),
            None => default_shell(std::env::var_os("SHELL").map(PathBuf::from)),
        };
        if !is_executable_file(&shell) {
            return Err(ConfigError::ShellNotExecutable { path: shell });
        }
        let mut pass_env = BTreeSet::new();
        for name in cli
            .pass_env
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
        {
            if !is_valid_env_name(name) {
                return Err(ConfigError::Invalid {
                    name: "--pass-env (MCP_PASS_ENV) entry",
                    value: name.to_owned(),
                    reason: "a variable name contains only letters, digits and '_' and does not start with a digit".into(),
                });
            }
            if name == AUTH_TOKEN_VAR {
                return Err(ConfigError::Invalid {
                    name: "MCP_PASS_ENV entry",
                    value: name.to_owned(),
                    reason: "the HTTP bearer token is never passed to sessions".into(),
                });
            }
            pass_env.insert(name.to_owned());
        }
        let session_rlimits = SessionRlimits::parse(cli.session_rlimit.iter().map(String::as_str))
            .map_err(|error| ConfigError::Invalid {
                name: "--session-rlimit (MCP_SESSION_RLIMITS) entry",
                value: error.value,
                reason: format!("{}; {RLIMIT_FORMAT}", error.reason),
            })?;
        let log_level = if cli.verbose {
            LogLevel::Trace
        } else if cli.debug {
            LogLevel::Debug
        } else {
            LogLevel::Info
        };
        let http = if cli.http {
            Some(HttpSettings {
                host: cli.host.trim().to_owned(),
                port: cli.port,
                auth_token: read_auth_token(
                    cli.auth_token_file.as_deref(),
                    std::env::var(AUTH_TOKEN_VAR).ok(),
                )?,
                auth_token_file: cli.auth_token_file.clone(),
                allowed_origins: non_empty_entries(&cli.allowed_origin),
                allowed_hosts: non_empty_entries(&cli.allowed_host),
                max_clients: cli.max_clients as usize,
                client_idle_timeout: parse_seconds(
                    "MCP_CLIENT_IDLE_TIMEOUT",
                    &cli.client_idle_timeout,
                    false,
                )?,
                ready_fd: cli.ready_fd.map(check_ready_fd).transpose()?,
            })
        } else {
            None
        };
        Ok(Self {
            command_timeout,
            shell,
            idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
            max_sessions: cli.max_sessions as usize,
            scrollback_rows: cli.scrollback as usize,
            transcript_bytes: cli.transcript_bytes as usize,
            kill_grace,
            pass_env,
            session_rlimits,
            legacy_tools: cli.legacy_tools,
            log_level,
            log_format: cli.log_format,
            http,
            audit_log: cli
                .audit_log
                .clone()
                .filter(|path| !path.as_os_str().is_empty()),
        })
    }
}

/// The variable that holds the HTTP bearer token.
pub const AUTH_TOKEN_VAR: &str = "MCP_AUTH_TOKEN";

fn non_empty_entries(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a duration in seconds; fractions are allowed, negative values, NaN and values
/// over one day are not, and zero only when `allow_zero` is set.
fn parse_seconds(
    name: &'static str,
    value: &str,
    allow_zero: bool,
) -> Result<Duration, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("expected a number of seconds such as 30 or 0.5"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(invalid("expected a number of seconds that is 0 or more"));
    }
    if seconds == 0.0 && !allow_zero {
        return Err(invalid("must be more than 0 seconds"));
    }
    if seconds > MAX_DURATION_SECS {
        return Err(invalid("must be at most 86400 seconds (one day)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Checks that the `--ready-fd` descriptor is open, and marks it close-on-exec so no
/// session inherits it.
fn check_ready_fd(fd: i32) -> Result<i32, ConfigError> {
    // SAFETY: F_GETFD and F_SETFD only read and set the descriptor flags of `fd`. For an
    // fd that is not open, fcntl returns -1 with EBADF and changes nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(ConfigError::Invalid {
            name: "--ready-fd (MCP_READY_FD)",
            value: fd.to_string(),
            reason: "the descriptor is not open: under s6 it must match the service's notification-fd file".into(),
        });
    }
    // SAFETY: as above, and the descriptor is open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    Ok(fd)
}

/// Picks the session shell: /bin/bash when present, else `$SHELL`, else /bin/sh.
fn default_shell(shell_env: Option<PathBuf>) -> PathBuf {
    let bash = PathBuf::from("/bin/bash");
    if is_executable_file(&bash) {
        return bash;
    }
    match shell_env {
        Some(path) if is_executable_file(&path) => path,
        _ => PathBuf::from("/bin/sh"),
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Checks a POSIX environment variable name: letters, digits and `_`, not starting with a digit.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut full = vec!["mcp-terminal-server"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full)
    }

    #[test]
    fn seconds_accept_fractions() {
        assert_eq!(
            parse_seconds("X", "0.5", false).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_seconds("X", " 30 ", false).unwrap(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn seconds_reject_bad_values_with_the_value() {
        for bad in ["abc", "-1", "NaN", "inf", "90000", ""] {
            let message = parse_seconds("MCP_COMMAND_TIMEOUT", bad, false)
                .unwrap_err()
                .to_string();
            assert!(message.contains("MCP_COMMAND_TIMEOUT"), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
        }
        assert!(parse_seconds("X", "0", false).is_err());
        assert_eq!(parse_seconds("X", "0", true).unwrap(), Duration::ZERO);
    }

    #[test]
    fn negative_flag_value_names_the_flag() {
        let parsed = cli(&["--idle-timeout", "-5"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("--idle-timeout"), "{error}");
        assert!(error.contains("\"-5\""), "{error}");
    }

    #[test]
    fn zero_idle_timeout_disables_reaping() {
        let settings = Settings::from_cli(&cli(&["--idle-timeout", "0"]).unwrap()).unwrap();
        assert_eq!(settings.idle_timeout, None);
    }

    #[test]
    fn max_sessions_zero_is_rejected() {
        let error = cli(&["--max-sessions", "0"]).unwrap_err().to_string();
        assert!(error.contains("--max-sessions"), "{error}");
    }

    #[test]
    fn missing_shell_is_rejected() {
        let parsed = cli(&["--shell", "/nonexistent/shell"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/shell"), "{error}");
    }

    #[test]
    fn pass_env_names_are_checked() {
        let parsed = cli(&["--pass-env", "GOOD_NAME,1BAD"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("1BAD"), "{error}");
        let parsed = cli(&["--pass-env", "AWS_REGION, EDITOR"]).unwrap();
        let settings = Settings::from_cli(&parsed).unwrap();
        assert!(settings.pass_env.contains("EDITOR"));
    }

    #[test]
    fn http_defaults_to_loopback_port_8080() {
        let settings = Settings::from_cli(&cli(&["--http"]).unwrap()).unwrap();
        let http = settings.http.expect("http settings");
        assert_eq!((http.host.as_str(), http.port), ("127.0.0.1", 8080));
        assert!(
            Settings::from_cli(&cli(&[]).unwrap())
                .unwrap()
                .http
                .is_none()
        );
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("mcp-config-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "  s3cret-value\n").unwrap();
        let token = read_auth_token(Some(&file), Some("from-env".into())).unwrap();
        assert_eq!(token, Some(AuthToken::new("s3cret-value")));
        std::fs::write(&file, " \n").unwrap();
        let error = read_auth_token(Some(&file), None).unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");
        let missing = dir.join("missing");
        let error = read_auth_token(Some(&missing), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_comes_from_the_variable_without_a_file() {
        let token = read_auth_token(None, Some(" abc ".into())).unwrap();
        assert_eq!(token, Some(AuthToken::new("abc")));
        assert!(read_auth_token(None, Some(String::new())).is_err());
        assert_eq!(read_auth_token(None, None).unwrap(), None);
    }

    #[test]
    fn token_debug_output_hides_the_value() {
        let shown = format!("{:?}", AuthToken::new("s3cret-value"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn token_variable_cannot_be_passed_to_sessions() {
        let parsed = cli(&["--pass-env", "MCP_AUTH_TOKEN"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("MCP_AUTH_TOKEN"), "{error}");
    }

    #[test]
    fn session_rlimits_are_parsed_and_checked() {
        let parsed = cli(&["--session-rlimit", "fsize=1M", "--session-rlimit", "cpu=5"]).unwrap();
        let settings = Settings::from_cli(&parsed).unwrap();
        let names: Vec<&str> = settings
            .session_rlimits
            .limits()
            .iter()
            .map(|limit| limit.name)
            .collect();
        assert_eq!(names, ["fsize", "cpu"]);
        let parsed = cli(&["--session-rlimit", "stack=1M"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("--session-rlimit"), "{error}");
        assert!(error.contains("\"stack=1M\""), "{error}");
    }

    #[test]
    fn log_format_defaults_to_text() {
        let settings = Settings::from_cli(&cli(&[]).unwrap()).unwrap();
        assert_eq!(settings.log_format, LogFormat::Text);
        let settings = Settings::from_cli(&cli(&["--log-format", "json"]).unwrap()).unwrap();
        assert_eq!(settings.log_format, LogFormat::Json);
        assert!(cli(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn ready_fd_must_be_open() {
        let parsed = cli(&["--http", "--ready-fd", "999"]).unwrap();
        let error = Settings::from_cli(&parsed).unwrap_err().to_string();
        assert!(error.contains("--ready-fd"), "{error}");
        assert!(error.contains("\"999\""), "{error}");
        assert!(cli(&["--ready-fd", "1"]).is_err());
    }

    #[test]
    fn debug_and_verbose_set_log_level() {
        assert_eq!(
            Settings::from_cli(&cli(&["--debug"]).unwrap())
                .unwrap()
                .log_level,
            LogLevel::Debug
        );
        assert_eq!(
            Settings::from_cli(&cli(&["--verbose"]).unwrap())
                .unwrap()
                .log_level,
            LogLevel::Trace
        );
    }
}
