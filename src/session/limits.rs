//! Resource limits for the processes the server starts, never for the server itself.
//!
//! `--session-rlimit NAME=VALUE` sets a soft and hard limit in every child. portable-pty
//! offers no hook between fork and exec, so a session program is started through the
//! server's own binary: [`wrap_program`] turns `prog args…` into `mcp-terminal-server
//! --exec-with-limits SPEC -- prog args…`, and [`run_exec_with_limits`] (called first in
//! `main`) sets the limits and replaces itself with `prog`. The pid stays the same, so
//! the session leader is still the process the PTY was spawned for. Children spawned
//! with [`std::process::Command`], such as execute_command's, call
//! [`SessionRlimits::apply`] and [`write_own_oom_score_adj`] from `pre_exec` instead.
//!
//! Every child also gets an `oom_score_adj` of at least [`CHILD_OOM_SCORE_ADJ`] and at
//! least the server's own ([`child_oom_score_adj`]), so the kernel's OOM killer picks a
//! child before the server.
//!
//! The same wrapper moves the program into its per-session cgroup before it runs
//! (`--cgroup DIR`, see [`super::cgroup`]), so it is used whenever cgroups are active,
//! with an empty SPEC when there are no limits.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;

/// The hidden first argument that makes the binary apply limits and exec a program.
pub const EXEC_WITH_LIMITS_ARG: &str = "--exec-with-limits";

/// One resource limit, with the same soft and hard value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The name as given on the command line (`as`, `fsize`, ...).
    pub name: &'static str,
    resource: libc::__rlimit_resource_t,
    pub value: u64,
}

/// Limit names, their `setrlimit` resource, and whether the value is a size in bytes
/// (which accepts the K, M and G suffixes).
const RESOURCES: &[(&str, libc::__rlimit_resource_t, bool)] = &[
    ("as", libc::RLIMIT_AS, true),
    ("fsize", libc::RLIMIT_FSIZE, true),
    ("cpu", libc::RLIMIT_CPU, false),
    ("nofile", libc::RLIMIT_NOFILE, false),
    ("nproc", libc::RLIMIT_NPROC, false),
    ("core", libc::RLIMIT_CORE, true),
];

/// The form of a valid `--session-rlimit` entry, for error messages.
pub const RLIMIT_FORMAT: &str = "expected NAME=VALUE with NAME one of as, fsize, cpu, nofile, nproc, core (sizes take K, M or G, cpu is in seconds)";

/// A `--session-rlimit` entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session rlimit {value:?}: {reason}; {RLIMIT_FORMAT}")]
pub struct InvalidRlimit {
    pub value: String,
    pub reason: String,
}

/// Parses one `NAME=VALUE` entry, such as `as=4G`, `cpu=5` or `nproc=400`.
pub fn parse_rlimit(entry: &str) -> Result<Rlimit, InvalidRlimit> {
    let invalid = |reason: &str| InvalidRlimit {
        value: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let (name, value) = entry
        .split_once('=')
        .ok_or_else(|| invalid("missing '='"))?;
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    let (name, resource, is_size) = RESOURCES
        .iter()
        .find(|(known, _, _)| *known == name)
        .copied()
        .ok_or_else(|| invalid("unknown limit name"))?;
    let (digits, multiplier) = match value.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') if is_size => (&value[..value.len() - 1], 1u64 << 10),
        Some(b'M') if is_size => (&value[..value.len() - 1], 1u64 << 20),
        Some(b'G') if is_size => (&value[..value.len() - 1], 1u64 << 30),
        _ => (value, 1),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| invalid("the value is not a whole number"))?;
    let value = number
        .checked_mul(multiplier)
        .ok_or_else(|| invalid("the value is too large"))?;
    Ok(Rlimit {
        name,
        resource,
        value,
    })
}

/// The limits set in every child the server starts. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRlimits {
    limits: Vec<Rlimit>,
}

impl SessionRlimits {
    /// Parses `--session-rlimit` entries; a later entry for the same name wins.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidRlimit> {
        let mut limits: Vec<Rlimit> = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let limit = parse_rlimit(entry)?;
            limits.retain(|existing| existing.name != limit.name);
            limits.push(limit);
        }
        Ok(Self { limits })
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    pub fn limits(&self) -> &[Rlimit] {
        &self.limits
    }

    /// Sets every limit in the calling process, soft and hard. Only calls `setrlimit`
    /// and allocates nothing, so it is safe between fork and exec (in `pre_exec`).
    pub fn apply(&self) -> std::io::Result<()> {
        for limit in &self.limits {
            let value = libc::rlimit {
                rlim_cur: limit.value,
                rlim_max: limit.value,
            };
            // SAFETY: setrlimit reads one valid rlimit struct.
            if unsafe { libc::setrlimit(limit.resource, &value) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Formats the limits as the comma-separated spec [`SessionRlimits::parse`] reads.
    pub fn spec(&self) -> String {
        self.limits
            .iter()
            .map(|limit| format!("{}={}", limit.name, limit.value))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Lowest `oom_score_adj` of a process the server starts.
pub const CHILD_OOM_SCORE_ADJ: i32 = 500;

/// Returns the `oom_score_adj` for a child: at least [`CHILD_OOM_SCORE_ADJ`] and at
/// least the server's own, so the kernel's OOM killer picks a child before the server.
pub fn child_oom_score_adj() -> i32 {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|value| value.trim().parse::<i32>().ok())
        .unwrap_or(0);
    own.clamp(CHILD_OOM_SCORE_ADJ, 1000)
}

/// Writes `value` (the decimal text, prepared before the fork) to the calling
/// process's `/proc/self/oom_score_adj`. Only calls open, write and close, so it is
/// safe between fork and exec. Raising the value needs no privilege. A failure is
/// ignored, because the value only steers which process the OOM killer picks.
pub fn write_own_oom_score_adj(value: &[u8]) {
    const PATH: &std::ffi::CStr = c"/proc/self/oom_score_adj";
    // SAFETY: PATH is NUL-terminated, `value` is a valid buffer of its length, and the
    // descriptor is closed before returning.
    unsafe {
        let fd = libc::open(PATH.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, value.as_ptr().cast(), value.len());
            libc::close(fd);
        }
    }
}

/// The wrapper's option naming the cgroup directory the program joins.
pub const CGROUP_ARG: &str = "--cgroup";

/// Returns the program and arguments that start `program args` with the limits set and
/// in `cgroup` (a cgroup directory), through the server's own binary; unchanged when
/// there are no limits and no cgroup.
pub fn wrap_program(
    server_binary: &std::path::Path,
    limits: &SessionRlimits,
    cgroup: Option<&std::path::Path>,
    program: String,
    args: Vec<String>,
) -> (String, Vec<String>) {
    if limits.is_empty() && cgroup.is_none() {
        return (program, args);
    }
    let mut wrapped = vec![EXEC_WITH_LIMITS_ARG.to_owned(), limits.spec()];
    if let Some(cgroup) = cgroup {
        wrapped.push(CGROUP_ARG.to_owned());
        wrapped.push(cgroup.display().to_string());
    }
    wrapped.push("--".to_owned());
    wrapped.push(program);
    wrapped.extend(args);
    (server_binary.display().to_string(), wrapped)
}

/// Runs the `--exec-with-limits SPEC [--cgroup DIR] -- PROGRAM ARGS…` mode when the
/// process was started that way: joins the cgroup, sets the limits, then replaces itself
/// with `PROGRAM` (searched in `PATH`). Returns `None` for a normal start, and an exit
/// status when the exec failed (127, as shells use for a command that cannot be run),
/// after writing the reason to stderr, which is the session's terminal.
///
/// A cgroup that cannot be joined is not an error here: the program runs in the
/// server's cgroup, and the server sees that and falls back (see
/// [`super::cgroup`]), so nothing is written to the session's terminal.
pub fn run_exec_with_limits(args: &[OsString]) -> Option<u8> {
    if args.get(1).map(|arg| arg.as_bytes()) != Some(EXEC_WITH_LIMITS_ARG.as_bytes()) {
        return None;
    }
    let fail = |message: String| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "mcp-terminal-server: {message}");
        Some(127)
    };
    let usage = || {
        fail(format!(
            "{EXEC_WITH_LIMITS_ARG} needs SPEC [{CGROUP_ARG} DIR] -- PROGRAM"
        ))
    };
    let Some(spec) = args.get(2) else {
        return usage();
    };
    let mut next = 3;
    if args.get(next).is_some_and(|arg| arg == CGROUP_ARG) {
        let Some(dir) = args.get(next + 1) else {
            return usage();
        };
        let procs = std::path::Path::new(dir).join("cgroup.procs");
        if let Ok(procs) = CString::new(procs.as_os_str().as_bytes()) {
            let _ = super::cgroup::join_calling_process(&procs);
        }
        next += 2;
    }
    if args.get(next).is_none_or(|arg| arg != "--") || args.len() < next + 2 {
        return usage();
    }
    let program = next + 1;
    let spec = spec.to_string_lossy();
    let limits = match SessionRlimits::parse(spec.split(',')) {
        Ok(limits) => limits,
        Err(error) => return fail(error.to_string()),
    };
    if let Err(error) = limits.apply() {
        return fail(format!("could not set session rlimits {spec}: {error}"));
    }
    let argv: Result<Vec<CString>, _> = args[program..]
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect();
    let Ok(argv) = argv else {
        return fail("an argument contains a NUL byte".to_owned());
    };
    let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|arg| arg.as_ptr()).collect();
    pointers.push(std::ptr::null());
    // SAFETY: `pointers` is a NULL-terminated array of valid C strings that outlive the
    // call; execvp returns only on failure.
    unsafe { libc::execvp(pointers[0], pointers.as_ptr()) };
    let error = std::io::Error::last_os_error();
    fail(format!("could not run {:?}: {error}", args[program]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_rlimit("as=4G").unwrap().value, 4 << 30);
        assert_eq!(parse_rlimit("fsize=1M").unwrap().value, 1 << 20);
        assert_eq!(parse_rlimit("core=0").unwrap().value, 0);
        assert_eq!(parse_rlimit("FSIZE = 512k").unwrap().value, 512 << 10);
    }

    #[test]
    fn counts_take_no_suffix() {
        assert_eq!(parse_rlimit("cpu=5").unwrap().value, 5);
        assert_eq!(parse_rlimit("nproc=400").unwrap().value, 400);
        let error = parse_rlimit("cpu=5K").unwrap_err().to_string();
        assert!(error.contains("\"cpu=5K\""), "{error}");
    }

    #[test]
    fn bad_entries_name_the_value() {
        for bad in ["as", "stack=1M", "as=-1", "as=lots", "as=99999999999G"] {
            let error = parse_rlimit(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
            assert!(error.contains("nproc"), "{error}");
        }
    }

    #[test]
    fn later_entry_wins_and_spec_round_trips() {
        let limits = SessionRlimits::parse(["cpu=5", "as=1G", "cpu=7", " "]).unwrap();
        assert_eq!(limits.limits().len(), 2);
        assert_eq!(limits.spec(), "as=1073741824,cpu=7");
        let again = SessionRlimits::parse(limits.spec().split(',')).unwrap();
        assert_eq!(again, limits);
    }

    #[test]
    fn wrap_is_identity_without_limits() {
        let none = SessionRlimits::default();
        let (program, args) = wrap_program(
            std::path::Path::new("/srv/bin"),
            &none,
            None,
            "bash".into(),
            vec!["-l".into()],
        );
        assert_eq!((program.as_str(), args), ("bash", vec!["-l".to_owned()]));
        let some = SessionRlimits::parse(["cpu=5"]).unwrap();
        let (program, args) = wrap_program(
            std::path::Path::new("/srv/bin"),
            &some,
            None,
            "bash".into(),
            vec![],
        );
        assert_eq!(program, "/srv/bin");
        assert_eq!(args, [EXEC_WITH_LIMITS_ARG, "cpu=5", "--", "bash"]);
    }

    #[test]
    fn wrap_with_cgroup_always_wraps() {
        let (program, args) = wrap_program(
            std::path::Path::new("/srv/bin"),
            &SessionRlimits::default(),
            Some(std::path::Path::new("/cg/session-1")),
            "bash".into(),
            vec!["-l".into()],
        );
        assert_eq!(program, "/srv/bin");
        assert_eq!(
            args,
            [
                EXEC_WITH_LIMITS_ARG,
                "",
                CGROUP_ARG,
                "/cg/session-1",
                "--",
                "bash",
                "-l"
            ]
        );
    }

    #[test]
    fn wrapper_rejects_missing_program() {
        let args: Vec<OsString> = [
            "bin",
            EXEC_WITH_LIMITS_ARG,
            "",
            CGROUP_ARG,
            "/nonexistent",
            "--",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(run_exec_with_limits(&args), Some(127));
        let args: Vec<OsString> = ["bin", EXEC_WITH_LIMITS_ARG, "", CGROUP_ARG]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(run_exec_with_limits(&args), Some(127));
    }

    #[test]
    fn normal_start_is_not_the_exec_mode() {
        let args: Vec<OsString> = ["mcp-terminal-server", "--http"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(run_exec_with_limits(&args), None);
    }
}
