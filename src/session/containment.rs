//! Keeping the server apart from its sessions, and the sessions' processes contained.
//!
//! - [`protect_server`]: the server is not dumpable, so a session running as the same
//!   user cannot read its `/proc/<pid>/environ` or `mem`, attach with ptrace, or open
//!   its descriptors through `/proc/<pid>/fd`.
//! - [`become_subreaper`]: processes that double-fork or call `setsid` are re-parented
//!   to the server instead of to init, and [`reap_orphans`] collects them when they
//!   exit, so none stays a zombie.
//! - [`instance_tag`]: every child carries `MTS_SERVER_INSTANCE`, which names the
//!   server instance that started it. A server killed with SIGKILL cannot end its
//!   sessions itself, so [`sweep_leftovers`] runs at start and ends the tagged
//!   processes of instances that are no longer running, and the per-instance cgroups
//!   they left ([`super::cgroup`]). A live instance's processes and cgroups are never
//!   touched.
//!
//! Per-session cgroups, where the server may create them, also catch a process that
//! clears its environment and leaves its session; see [`super::cgroup`].

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cgroup::{ContainedCgroup, Hierarchy};
use super::process_tree::{Membership, kill_tree, read_process};

/// Environment variable naming the server instance that started a process.
pub const INSTANCE_VAR: &str = "MTS_SERVER_INSTANCE";

/// How often [`reap_orphans`] looks for exited orphans besides SIGCHLD wake-ups.
const ORPHAN_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Makes the server non-dumpable. Call it first in `main`, before the token is read.
/// Returns whether it worked.
pub fn protect_server() -> bool {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// Makes the server the child subreaper of everything it starts. Returns whether it
/// worked.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Returns `<pid namespace>.<pid>.<start time>` of this server, which no other process
/// shares while it runs and no later process reuses. Pids are only meaningful inside
/// one pid namespace, so the sweep ignores tags of other namespaces (containers).
pub fn instance_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id() as i32;
        let start = read_process(pid).map_or(0, |info| info.start_time);
        format!("{}.{pid}.{start}", pid_namespace())
    })
}

/// Returns the inode number of this process's pid namespace, or 0 if it cannot be read.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |meta| meta.ino())
}

/// Pids of the children the server waits for itself (session leaders, and any child a
/// caller registers). [`reap_orphans`] leaves them alone, so their waiters get their
/// exit status.
fn own_children() -> MutexGuard<'static, HashSet<i32>> {
    static CHILDREN: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    CHILDREN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spawns a child with `spawn` and registers its pid as waited for elsewhere. The
/// registry stays locked during the spawn, so the orphan reaper cannot collect the
/// child's status in between. Every child whose status the server reads itself (with
/// `waitpid` or tokio's `Child::wait`) must be spawned through this and unregistered
/// once reaped, or [`reap_orphans`] may collect its status first.
pub fn spawn_registered<T>(spawn: impl FnOnce() -> T, pid_of: impl FnOnce(&T) -> Option<u32>) -> T {
    let mut children = own_children();
    let spawned = spawn();
    if let Some(pid) = pid_of(&spawned) {
        children.insert(pid as i32);
    }
    spawned
}

/// Unregisters a child when dropped, for callers that reap it on several paths.
pub struct RegisteredChild(pub u32);

impl Drop for RegisteredChild {
    fn drop(&mut self) {
        unregister_child(self.0);
    }
}

/// Removes a child from the registry once its own waiter has reaped it.
pub fn unregister_child(pid: u32) {
    own_children().remove(&(pid as i32));
}

/// Reaps exited children that no waiter of the server collects: orphans re-parented
/// to the server. Runs until `shutdown` is cancelled, waking on SIGCHLD and every second.
pub async fn reap_orphans(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = signal(SignalKind::child()).ok();
    let mut ticker = tokio::time::interval(ORPHAN_SCAN_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            Some(()) = async { match sigchld.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {}
        }
        let reaped = tokio::task::spawn_blocking(reap_exited_orphans)
            .await
            .unwrap_or(0);
        if reaped > 0 {
            tracing::debug!(processes = reaped, "reaped orphaned session processes");
        }
    }
}

/// Collects every zombie child of the server that is not registered. Returns how many.
pub fn reap_exited_orphans() -> usize {
    let own_pid = std::process::id() as i32;
    let children = own_children();
    let mut reaped = 0;
    for pid in zombie_children(own_pid) {
        if children.contains(&pid) {
            continue;
        }
        let mut status = 0;
        // SAFETY: waitpid on one zombie child with WNOHANG writes only `status`.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            reaped += 1;
        }
    }
    reaped
}

/// Pids of the zombies whose parent is `parent`.
fn zombie_children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_and_state(&stat))
                == Some((parent, 'Z'))
        })
        .collect()
}

/// Returns the parent pid and state letter from a `/proc/<pid>/stat` line.
fn parent_and_state(stat: &str) -> Option<(i32, char)> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((parent, state))
}

/// Reports whether the instance named by a tag value is still running.
fn instance_alive(tag: &str) -> bool {
    let mut parts = tag.split('.');
    let (Some(Ok(pid)), Some(Ok(start))) = (
        parts.nth(1).map(str::parse::<i32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        return false;
    };
    read_process(pid).is_some_and(|info| info.start_time == start && info.state != 'Z')
}

/// Reports whether a tag names an instance in this server's pid namespace.
fn same_pid_namespace(tag: &str) -> bool {
    tag.split('.').next() == instance_tag().split('.').next()
}

/// Returns the value of `name` in a NUL-separated environment block.
fn environ_value<'a>(environ: &'a [u8], name: &str) -> Option<&'a [u8]> {
    environ.split(|byte| *byte == 0).find_map(|entry| {
        entry
            .strip_prefix(name.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
    })
}

/// Lists the processes tagged by instances that are no longer running, grouped by the
/// dead instance's tag. Only processes of the server's own user and pid namespace count:
/// a server running as root leaves other users' processes and containers alone.
pub fn find_leftovers() -> Vec<(String, Vec<i32>)> {
    use std::os::unix::fs::MetadataExt as _;
    let own = instance_tag();
    // SAFETY: geteuid has no side effects.
    let uid = unsafe { libc::geteuid() };
    let mut by_instance: Vec<(String, Vec<i32>)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return by_instance;
    };
    for pid in entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if std::fs::metadata(format!("/proc/{pid}")).map_or(true, |meta| meta.uid() != uid) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Some(tag) = environ_value(&environ, INSTANCE_VAR) else {
            continue;
        };
        let tag = String::from_utf8_lossy(tag).into_owned();
        if tag == own || !same_pid_namespace(&tag) || instance_alive(&tag) {
            continue;
        }
        match by_instance.iter_mut().find(|(known, _)| *known == tag) {
            Some((_, pids)) => pids.push(pid),
            None => by_instance.push((tag, vec![pid])),
        }
    }
    by_instance
}

/// Lists the per-instance cgroups of instances that are no longer running, with their
/// tags: only those of the server's own user and pid namespace, in the server's cgroup.
pub fn find_leftover_cgroups(hierarchy: &Hierarchy) -> Vec<(String, ContainedCgroup)> {
    let own = instance_tag();
    hierarchy
        .instance_cgroups()
        .into_iter()
        .filter(|(tag, _)| tag != own && same_pid_namespace(tag) && !instance_alive(tag))
        .collect()
}

/// Ends what earlier instances of the server left running when they were killed
/// outright, with the usual HUP, TERM, KILL ladder, then `cgroup.kill` for what is
/// left in their cgroups, which it removes. `hierarchy` is the server's cgroup when
/// per-session cgroups are active. Returns how many processes it found.
pub async fn sweep_leftovers(grace: Duration, hierarchy: Option<Hierarchy>) -> usize {
    let (processes, cgroups) = tokio::task::spawn_blocking(move || {
        let cgroups = hierarchy
            .as_ref()
            .map(find_leftover_cgroups)
            .unwrap_or_default();
        (find_leftovers(), cgroups)
    })
    .await
    .unwrap_or_default();
    let mut instances: Vec<(String, Vec<i32>, Option<ContainedCgroup>)> = processes
        .into_iter()
        .map(|(tag, pids)| (tag, pids, None))
        .collect();
    for (tag, cgroup) in cgroups {
        let pids = cgroup.pids();
        match instances.iter_mut().find(|(known, _, _)| *known == tag) {
            Some((_, known_pids, slot)) => {
                for pid in pids {
                    if !known_pids.contains(&pid) {
                        known_pids.push(pid);
                    }
                }
                *slot = Some(cgroup);
            }
            None => instances.push((tag, pids, Some(cgroup))),
        }
    }

    let mut found = 0;
    for (tag, pids, cgroup) in instances {
        found += pids.len();
        tracing::info!(instance = %tag, processes = pids.len(), cgroup = cgroup.as_ref().map(|cgroup| cgroup.dir.display().to_string()), "ending processes left by a server that is no longer running");
        let members = Membership::tag_only(INSTANCE_VAR, &tag)
            .with_cgroup(cgroup.as_ref().map(|cgroup| cgroup.path.clone()));
        let report = kill_tree(&members, grace).await;
        let cgroup_survivors = match &cgroup {
            Some(cgroup) => cgroup.kill_and_remove().await.survivors,
            None => 0,
        };
        if report.survivors > 0 || cgroup_survivors > 0 {
            tracing::warn!(instance = %tag, survivors = report.survivors.max(cgroup_survivors), "processes of an earlier server survived SIGKILL");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parent_and_state() {
        let stat = "12 (a) b) Z 7 12 12 0 -1 0";
        assert_eq!(parent_and_state(stat), Some((7, 'Z')));
        assert_eq!(parent_and_state("garbage"), None);
    }

    #[test]
    fn environ_value_matches_whole_names() {
        let environ = b"XMTS_SERVER_INSTANCE=1.2\0MTS_SERVER_INSTANCE=3.4\0";
        assert_eq!(
            environ_value(environ, INSTANCE_VAR),
            Some(b"3.4".as_slice())
        );
        assert_eq!(environ_value(b"A=1\0", INSTANCE_VAR), None);
    }

    #[test]
    fn own_instance_is_alive_and_garbage_is_not() {
        assert!(instance_alive(instance_tag()));
        assert!(!instance_alive("1.999999999.1"));
        assert!(!instance_alive("not-a-tag"));
        let parts: Vec<&str> = instance_tag().split('.').collect();
        let start: u64 = parts[2].parse().unwrap();
        let restarted = format!("{}.{}.{}", parts[0], parts[1], start + 1);
        assert!(
            !instance_alive(&restarted),
            "a reused pid is another instance"
        );
        assert!(same_pid_namespace(&restarted));
        assert!(!same_pid_namespace("0.1.2"), "another pid namespace");
    }
}
