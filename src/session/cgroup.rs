//! Per-session cgroup v2 containment, used when the server may create cgroups below its
//! own.
//!
//! A process that calls `setsid` and clears its environment leaves every trace that
//! [`super::process_tree`] follows, but it cannot leave its cgroup without write access
//! to another one. So when the server's own cgroup is writable (systemd's
//! `Delegate=yes`, a container with a private cgroup namespace, or root with a writable
//! cgroup2 mount) and the kernel has `cgroup.kill` (Linux 5.14 and later), each session
//! and each `execute_command` run gets a cgroup of its own:
//!
//! ```text
//! <server's cgroup>/                      the server itself stays here
//!   mcp-terminal-<instance tag>/          one per server instance, never holds a process
//!     session-<session uuid>/             one per session
//!     command-<tag uuid>/                 one per execute_command run
//! ```
//!
//! The per-instance parent holds no process, which respects cgroup v2's rule that a
//! cgroup with controllers enabled for its children holds no processes itself. No
//! controller is enabled, so the layout works below a cgroup that holds the server.
//!
//! A program joins its cgroup before it runs: session programs start through the
//! server's binary (`--exec-with-limits ... --cgroup DIR`, see [`super::limits`]), and
//! commands write to `cgroup.procs` in `pre_exec`. Ending keeps the HUP, TERM, KILL
//! ladder, whose scans also match by cgroup, and then writes `1` to `cgroup.kill`, waits
//! until `cgroup.events` says `populated 0` and removes the directory. When anything
//! here fails, the session falls back to the tag and session-id mechanisms alone.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Prefix of the per-instance parent cgroup's name; the instance tag follows it.
pub const INSTANCE_PREFIX: &str = "mcp-terminal-";
/// How long [`ContainedCgroup::kill_and_remove`] waits for `populated 0`.
const EMPTY_WAIT: Duration = Duration::from_secs(2);
/// How long [`ContainedCgroup::confirm_joined`] waits for the wrapper to join; generous,
/// because a loaded machine may delay the wrapper's start.
const JOIN_WAIT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The reason per-session cgroups are not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("no cgroup2 file system is mounted")]
    NoCgroup2Mount,
    #[error("/proc/self/cgroup has no cgroup v2 entry (a \"0::\" line)")]
    NoUnifiedEntry,
    #[error("the server's cgroup {path:?} is not below the cgroup2 mount")]
    OutsideMount { path: String },
    #[error("the server's cgroup directory {dir:?} is not writable: {reason}")]
    NotWritable { dir: PathBuf, reason: String },
    #[error("the kernel has no cgroup.kill in {dir:?} (it needs Linux 5.14 or later)")]
    NoCgroupKill { dir: PathBuf },
}

/// A cgroup2 mount as listed in `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup2Mount {
    /// The mount point, such as `/sys/fs/cgroup`.
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point, `/` unless a subtree was bind-mounted.
    pub root: String,
}

/// Undoes the octal escapes (`\040` for a space) that mountinfo uses in paths.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|digits| {
            bytes[i] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lists the cgroup2 mounts in a `/proc/self/mountinfo` text. Each line is `ID PARENT
/// MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
pub fn parse_cgroup2_mounts(mountinfo: &str) -> Vec<Cgroup2Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            if after.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut fields = before.split_whitespace();
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            Some(Cgroup2Mount {
                mount_point: PathBuf::from(unescape_mountinfo(mount_point)),
                root: unescape_mountinfo(root),
            })
        })
        .collect()
}

/// Returns the cgroup v2 path in a `/proc/<pid>/cgroup` text: the `0::/path` line.
pub fn parse_unified_cgroup(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim_end())
        .filter(|path| path.starts_with('/'))
}

/// Returns the cgroup v2 path of a process, or `None` when it is gone or has none.
pub fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_unified_cgroup(&text).map(str::to_owned)
}

/// Reports whether `path` is `cgroup` or below it.
pub fn is_within(path: &str, cgroup: &str) -> bool {
    path.strip_prefix(cgroup)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Joins a cgroup path (`/a/b`) and a child name.
fn child_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Returns the directory of cgroup `path` under the mount that shows it, or `None`
/// when no mount's root contains it.
fn directory_of(mounts: &[Cgroup2Mount], path: &str) -> Option<PathBuf> {
    mounts.iter().find_map(|mount| {
        if !is_within(path, &mount.root) && mount.root != "/" {
            return None;
        }
        let relative = path
            .strip_prefix(mount.root.as_str())?
            .trim_start_matches('/');
        if relative.is_empty() {
            // join("") would append a trailing slash.
            return Some(mount.mount_point.clone());
        }
        Some(mount.mount_point.join(relative))
    })
}

/// Checks write access for the server's user with `access(2)`, which also reports a
/// read-only mount (`EROFS`).
fn check_writable(path: &Path) -> Result<(), std::io::Error> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: access reads one NUL-terminated path.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The server's own cgroup, found writable.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// The server's cgroup as a path in the hierarchy, such as `/system.slice/x.service`.
    pub own_path: String,
    /// Its directory, such as `/sys/fs/cgroup/system.slice/x.service`.
    pub own_dir: PathBuf,
}

impl Hierarchy {
    /// Finds the cgroup2 mount and the server's cgroup, and checks that the server may
    /// create cgroups there and move its children out of it.
    pub fn detect() -> Result<Self, Unavailable> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = parse_cgroup2_mounts(&mountinfo);
        if mounts.is_empty() {
            return Err(Unavailable::NoCgroup2Mount);
        }
        let own_path = cgroup_of(std::process::id() as i32).ok_or(Unavailable::NoUnifiedEntry)?;
        let own_dir = directory_of(&mounts, &own_path)
            .filter(|dir| dir.is_dir())
            .ok_or_else(|| Unavailable::OutsideMount {
                path: own_path.clone(),
            })?;
        // Creating a child needs the directory; moving a child of the server out of this
        // cgroup needs its cgroup.procs, the common ancestor of both cgroups.
        for path in [own_dir.clone(), own_dir.join("cgroup.procs")] {
            check_writable(&path).map_err(|error| Unavailable::NotWritable {
                dir: own_dir.clone(),
                reason: format!("{}: {error}", path.display()),
            })?;
        }
        Ok(Self { own_path, own_dir })
    }

    /// Creates this instance's parent cgroup and checks that it has `cgroup.kill`.
    pub fn create_instance(&self, tag: &str) -> Result<InstanceCgroups, Unavailable> {
        let name = format!("{INSTANCE_PREFIX}{tag}");
        let dir = self.own_dir.join(&name);
        if let Err(error) = std::fs::create_dir(&dir)
            && error.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(Unavailable::NotWritable {
                dir: self.own_dir.clone(),
                reason: format!("creating {}: {error}", dir.display()),
            });
        }
        if !dir.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&dir);
            return Err(Unavailable::NoCgroupKill { dir });
        }
        Ok(InstanceCgroups {
            parent: ContainedCgroup {
                path: child_path(&self.own_path, &name),
                dir,
            },
        })
    }

    /// Lists the per-instance cgroups in the server's cgroup that belong to the
    /// server's user, with the instance tag each one names.
    pub fn instance_cgroups(&self) -> Vec<(String, ContainedCgroup)> {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: geteuid has no side effects.
        let uid = unsafe { libc::geteuid() };
        let Ok(entries) = std::fs::read_dir(&self.own_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name().to_str()?.to_owned();
                let tag = name.strip_prefix(INSTANCE_PREFIX)?.to_owned();
                let meta = entry.metadata().ok()?;
                if !meta.is_dir() || meta.uid() != uid {
                    return None;
                }
                Some((
                    tag,
                    ContainedCgroup {
                        path: child_path(&self.own_path, &name),
                        dir: entry.path(),
                    },
                ))
            })
            .collect()
    }
}

/// One cgroup the server created: a session's, a command's, or an instance's parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainedCgroup {
    /// Path in the hierarchy, as `/proc/<pid>/cgroup` shows it.
    pub path: String,
    /// Directory in the cgroup2 file system.
    pub dir: PathBuf,
}

impl ContainedCgroup {
    /// Returns the path of its `cgroup.procs`, which a process writes `0` to to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Returns the pids in this cgroup and every cgroup below it.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        let mut pending = vec![self.dir.clone()];
        // Bounded, in case a program keeps creating cgroups below its own.
        for _ in 0..4096 {
            let Some(dir) = pending.pop() else { break };
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(
                    text.lines()
                        .filter_map(|line| line.trim().parse::<i32>().ok()),
                );
            }
            pending.extend(subdirectories(&dir));
        }
        pids
    }

    /// Reports whether a process of this cgroup or one below it is alive, from
    /// `cgroup.events`. A missing cgroup counts as empty.
    pub fn is_populated(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.events"))
            .is_ok_and(|events| events.lines().any(|line| line.trim() == "populated 1"))
    }

    /// SIGKILLs every process in this cgroup and below through `cgroup.kill`, waits at
    /// most two seconds until none is left, and removes the cgroup and the ones below
    /// it. Returns how many processes it killed and how many survived.
    pub async fn kill_and_remove(&self) -> KillOutcome {
        let found = self.pids().len();
        if found > 0
            && let Err(error) = std::fs::write(self.dir.join("cgroup.kill"), "1")
        {
            tracing::warn!(cgroup = %self.dir.display(), %error, "could not write cgroup.kill");
        }
        let deadline = tokio::time::Instant::now() + EMPTY_WAIT;
        while self.is_populated() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let survivors = if self.is_populated() {
            self.pids().len()
        } else {
            0
        };
        let removed = remove_tree(&self.dir);
        if let Err(error) = &removed {
            tracing::warn!(cgroup = %self.dir.display(), %error, survivors, "could not remove a cgroup");
        }
        KillOutcome {
            killed: found.saturating_sub(survivors),
            survivors,
            removed: removed.is_ok(),
        }
    }
}

impl ContainedCgroup {
    /// Waits until the process `pid`, started through the server's binary with
    /// `--cgroup`, is in this cgroup. The wrapper joins before it execs the program, so
    /// once the process runs something else and is still outside, joining failed.
    /// Blocks until then, usually a few milliseconds, and gives up after five seconds.
    pub fn confirm_joined(&self, pid: i32) -> Result<(), String> {
        let own_cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
        let deadline = std::time::Instant::now() + JOIN_WAIT;
        loop {
            let Some(current) = cgroup_of(pid) else {
                // Gone already: nothing is left to contain.
                return Ok(());
            };
            if is_within(&current, &self.path) {
                return Ok(());
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let second_arg = cmdline.split(|byte| *byte == 0).nth(1).unwrap_or_default();
            // Before its exec the child runs the server's own command line, then the
            // wrapper's. The command line reads empty while an exec is in progress.
            let wrapper_pending = cmdline.is_empty()
                || cmdline == own_cmdline
                || second_arg == super::limits::EXEC_WITH_LIMITS_ARG.as_bytes();
            if !wrapper_pending {
                return match cgroup_of(pid) {
                    Some(current) if !is_within(&current, &self.path) => Err(format!(
                        "the program runs in cgroup {current:?}: writing to {} failed",
                        self.procs_file().display()
                    )),
                    _ => Ok(()),
                };
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "the program had not joined cgroup {:?} after {JOIN_WAIT:?}",
                    self.path
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes this cgroup when it is empty, as after a failed join.
    pub fn remove_if_empty(&self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The outcome of [`ContainedCgroup::kill_and_remove`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KillOutcome {
    /// Processes that were in the cgroup when `cgroup.kill` was written and are gone.
    pub killed: usize,
    /// Processes still in it after the wait (stuck in uninterruptible sleep, say).
    pub survivors: usize,
    /// The directory was removed.
    pub removed: bool,
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect()
}

/// Removes a cgroup directory and every cgroup below it, deepest first. A cgroup's
/// directory holds only the kernel's interface files, which `rmdir` takes along.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for child in subdirectories(dir) {
        remove_tree(&child)?;
    }
    match std::fs::remove_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// This server instance's parent cgroup, under which every session and command gets a
/// cgroup of its own. Shared through [`super::pty::SpawnConfig`]; removed at shutdown.
#[derive(Debug)]
pub struct InstanceCgroups {
    parent: ContainedCgroup,
}

/// Failures to create or join a session's cgroup, counted so that only the first one
/// is logged as a warning.
static JOIN_FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Logs a cgroup failure that makes one session or command fall back to the tag and
/// session-id mechanisms: a warning the first time, debug after that.
pub fn log_fallback(what: &str, id: &str, error: &dyn std::fmt::Display) {
    if JOIN_FAILURES.fetch_add(1, Ordering::Relaxed) == 0 {
        tracing::warn!(cgroup_for = what, id, %error, "per-session cgroup failed; using tag and session id only (later failures are logged at debug)");
    } else {
        tracing::debug!(cgroup_for = what, id, %error, "per-session cgroup failed; using tag and session id only");
    }
}

impl InstanceCgroups {
    /// The per-instance parent cgroup.
    pub fn parent(&self) -> &ContainedCgroup {
        &self.parent
    }

    /// Creates the cgroup `<kind>-<id>` for one session or command.
    pub fn create_child(&self, kind: &str, id: &str) -> std::io::Result<ContainedCgroup> {
        let name = format!("{kind}-{id}");
        let dir = self.parent.dir.join(&name);
        std::fs::create_dir(&dir)?;
        Ok(ContainedCgroup {
            path: child_path(&self.parent.path, &name),
            dir,
        })
    }

    /// Ends whatever is left in every cgroup of this instance and removes them all,
    /// the parent included. Runs at shutdown, after the sessions were closed.
    pub async fn remove(&self) -> KillOutcome {
        self.parent.kill_and_remove().await
    }
}

/// Writes `0` to a `cgroup.procs` file, which moves the calling process into that
/// cgroup. Only calls `open`, `write` and `close`, so it is async-signal-safe and may
/// run between fork and exec.
pub fn join_calling_process(procs_file: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: open reads one NUL-terminated path; write reads one byte of a static
    // buffer; close releases the descriptor opened here, once.
    unsafe {
        let fd = libc::open(procs_file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if written == 1 { Ok(()) } else { Err(error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const UNIFIED: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
29 21 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn mountinfo_finds_hybrid_unified_mount() {
        let mounts = parse_cgroup2_mounts(HYBRID);
        assert_eq!(
            mounts,
            vec![Cgroup2Mount {
                mount_point: PathBuf::from("/sys/fs/cgroup/unified"),
                root: "/".to_owned(),
            }]
        );
    }

    #[test]
    fn mountinfo_skips_optional_fields() {
        let mounts = parse_cgroup2_mounts(UNIFIED);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn mountinfo_unescapes_paths() {
        let line = "50 1 0:40 /a\\040b /mnt/my\\040cgroup rw - cgroup2 none rw\n";
        let mounts = parse_cgroup2_mounts(line);
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/my cgroup"));
        assert_eq!(mounts[0].root, "/a b");
        assert!(parse_cgroup2_mounts("garbage\n").is_empty());
        assert!(parse_cgroup2_mounts("").is_empty());
    }

    #[test]
    fn proc_cgroup_unified_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n0::/\n";
        assert_eq!(parse_unified_cgroup(hybrid), Some("/"));
        let unified = "0::/system.slice/mcp-terminal.service\n";
        assert_eq!(
            parse_unified_cgroup(unified),
            Some("/system.slice/mcp-terminal.service")
        );
        assert_eq!(parse_unified_cgroup("1:cpu:/\n"), None, "cgroup v1 only");
        assert_eq!(parse_unified_cgroup("0::garbage\n"), None);
    }

    #[test]
    fn directory_under_mount_root() {
        let mounts = parse_cgroup2_mounts(UNIFIED);
        assert_eq!(
            directory_of(&mounts, "/system.slice/a.service"),
            Some(PathBuf::from("/sys/fs/cgroup/system.slice/a.service"))
        );
        assert_eq!(
            directory_of(&mounts, "/").map(|dir| dir.display().to_string()),
            Some("/sys/fs/cgroup".to_owned())
        );
        let bound = vec![Cgroup2Mount {
            mount_point: PathBuf::from("/c"),
            root: "/a".to_owned(),
        }];
        assert_eq!(directory_of(&bound, "/a/b"), Some(PathBuf::from("/c/b")));
        assert_eq!(directory_of(&bound, "/ab"), None, "a sibling of the root");
    }

    #[test]
    fn within_matches_whole_components() {
        assert!(is_within("/a/b", "/a/b"));
        assert!(is_within("/a/b/c", "/a/b"));
        assert!(!is_within("/a/bc", "/a/b"));
        assert!(!is_within("/a", "/a/b"));
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "x"), "/a/x");
    }
}
