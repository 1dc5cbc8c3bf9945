//! Shell integration: a prompt hook for bash, zsh and sh sessions that prints OSC 133
//! marks (see [`super::screen::marks`]) around every command. The marks tell the server
//! when a command finished and with which exit status, without typing anything into
//! the terminal.
//!
//! The hooks come from small startup files written once per server into a private
//! directory: bash starts with `--rcfile`, zsh with `ZDOTDIR`, and sh with `ENV`. Each
//! file first reads the user's own startup file, as the shell would have, and then adds
//! the hook. The session's nonce travels in `MCP_TERMINAL_NONCE`.
//!
//! What survives: `set -euo pipefail` (the hook never fails and never returns a
//! non-zero status while `errexit` is on), `exec bash` and nested bash shells (the
//! hook function, `PROMPT_COMMAND` naming only the hook, and `PS0` are exported). What
//! does not: a startup file or command that replaces `PROMPT_COMMAND`, `PS0` or `PS1`
//! after the hook was installed, and shells other than bash, zsh and sh.

use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable carrying a session's mark nonce.
pub const NONCE_VAR: &str = "MCP_TERMINAL_NONCE";
/// Environment variable carrying the user's `ZDOTDIR` while ours is in effect.
const USER_ZDOTDIR_VAR: &str = "MCP_TERMINAL_USER_ZDOTDIR";

/// A shell the server can integrate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
    /// A POSIX sh (dash, ash, or bash as `sh`): the prompt carries the marks, and
    /// there is no hook before a command runs, so no `C` mark.
    Sh,
}

impl ShellKind {
    /// Recognises a shell by its file name.
    pub fn detect(program: &Path) -> Option<ShellKind> {
        match program.file_name()?.to_str()? {
            "bash" => Some(ShellKind::Bash),
            "zsh" => Some(ShellKind::Zsh),
            "sh" | "dash" | "ash" => Some(ShellKind::Sh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShellKind::Bash => "bash",
            ShellKind::Zsh => "zsh",
            ShellKind::Sh => "sh",
        }
    }
}

const BASH_RC: &str = r#"# Shell integration of mcp-terminal-server for bash, read instead of ~/.bashrc.
if [ -r ~/.bashrc ]; then . ~/.bashrc; fi
__mcp_terminal_status() { return "$1"; }
__mcp_terminal_precmd() {
    local status=$?
    printf '\033]133;D;%s;%s\007\033]133;A;%s\007' "${MCP_TERMINAL_NONCE-}" "$status" "${MCP_TERMINAL_NONCE-}"
    case ${PS1-} in
        *'133;B;'*) ;;
        *) PS1="${PS1-}"'\[\033]133;B;${MCP_TERMINAL_NONCE-}\007\]' ;;
    esac
    # Run what the startup files put in PROMPT_COMMAND, with $? as the command left it.
    # `||` keeps a non-zero status from ending the shell under errexit.
    if [ -n "${__mcp_terminal_user_prompt_command-}" ]; then
        if [ "$status" -eq 0 ]; then
            eval "$__mcp_terminal_user_prompt_command"
        else
            __mcp_terminal_status "$status" || eval "$__mcp_terminal_user_prompt_command"
        fi
    fi
    # Hand the status on to the rest of PROMPT_COMMAND, except under errexit, where a
    # non-zero return would end the shell.
    case $- in
        *e*) ;;
        *) return "$status" ;;
    esac
}
# The startup files' PROMPT_COMMAND (a string, or an array joined with ;) stays in this
# shell. Only the hook is exported, so `exec bash` and nested shells print marks too,
# without commands their own startup files do not define.
__mcp_terminal_join() { local IFS=';'; __mcp_terminal_user_prompt_command="${PROMPT_COMMAND[*]-}"; }
__mcp_terminal_join
unset -f __mcp_terminal_join
unset PROMPT_COMMAND
PROMPT_COMMAND=__mcp_terminal_precmd
PS0='\033]133;C;${MCP_TERMINAL_NONCE-}\007'"${PS0-}"
export -f __mcp_terminal_precmd __mcp_terminal_status
export PROMPT_COMMAND PS0
"#;

const ZSH_ENV: &str = r#"# Shell integration of mcp-terminal-server for zsh: reads the user's .zshenv.
__mcp_terminal_zdotdir=$ZDOTDIR
ZDOTDIR=${MCP_TERMINAL_USER_ZDOTDIR:-$HOME}
[[ -r $ZDOTDIR/.zshenv ]] && . $ZDOTDIR/.zshenv
ZDOTDIR=$__mcp_terminal_zdotdir
unset __mcp_terminal_zdotdir
"#;

const ZSH_RC: &str = r#"# Shell integration of mcp-terminal-server for zsh: reads the user's .zshrc.
ZDOTDIR=${MCP_TERMINAL_USER_ZDOTDIR:-$HOME}
unset MCP_TERMINAL_USER_ZDOTDIR
[[ -r $ZDOTDIR/.zshrc ]] && . $ZDOTDIR/.zshrc
__mcp_terminal_precmd() {
    local s=$?
    printf '\033]133;D;%s;%s\007\033]133;A;%s\007' "${MCP_TERMINAL_NONCE-}" "$s" "${MCP_TERMINAL_NONCE-}"
    [[ $PS1 == *'133;B;'* ]] || PS1="$PS1%{"$'\e'"]133;B;${MCP_TERMINAL_NONCE-}"$'\a'"%}"
    return 0
}
__mcp_terminal_preexec() {
    printf '\033]133;C;%s\007' "${MCP_TERMINAL_NONCE-}"
}
precmd_functions=(__mcp_terminal_precmd $precmd_functions)
preexec_functions=(__mcp_terminal_preexec $preexec_functions)
"#;

const SH_RC: &str = r#"# Shell integration of mcp-terminal-server for sh, read through ENV.
__mcp_terminal_marks() {
    printf '\033]133;D;%s;%s\007\033]133;A;%s\007' "${MCP_TERMINAL_NONCE-}" "$1" "${MCP_TERMINAL_NONCE-}"
}
PS1='$(__mcp_terminal_marks "$?")'"${PS1-\$ }"'$(printf "\033]133;B;%s\007" "${MCP_TERMINAL_NONCE-}")'
"#;

/// How to start a shell with its hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Arguments to pass before any others.
    pub args: Vec<String>,
    /// Variables to set, on top of the session's environment.
    pub env: Vec<(String, String)>,
}

/// Returns the directory of the startup files, created on first use, or `None` when it
/// could not be prepared (the reason is logged once). Sessions then run without
/// integration.
fn startup_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| match prepare_startup_dir() {
        Ok(dir) => Some(dir),
        Err(error) => {
            tracing::warn!(%error, "shell integration is off: its startup files could not be written");
            None
        }
    })
    .as_deref()
}

/// Creates (or checks) a directory only this user can write, and writes the startup
/// files into it. A directory owned by someone else or open to others is rejected,
/// because a user who can change these files runs code in every session.
fn prepare_startup_dir() -> std::io::Result<PathBuf> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "mcp-terminal-server-{uid}-{}",
        env!("CARGO_PKG_VERSION")
    ));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory owned by uid {uid} with mode 0700",
            dir.display()
        )));
    }
    let zsh_dir = dir.join("zsh");
    match std::fs::DirBuilder::new().mode(0o700).create(&zsh_dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    write_file(&dir.join("bash.rc"), BASH_RC)?;
    write_file(&dir.join("sh.rc"), SH_RC)?;
    write_file(&zsh_dir.join(".zshenv"), ZSH_ENV)?;
    write_file(&zsh_dir.join(".zshrc"), ZSH_RC)?;
    Ok(dir)
}

/// Writes `contents` to a temporary name and renames it over `path`, so a shell
/// starting at the same moment in another server never reads half a file.
fn write_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(contents.as_bytes())?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// Returns how to start `kind` with its hook and `nonce`, or `None` when the startup
/// files are unavailable.
pub fn launch(kind: ShellKind, nonce: &str) -> Option<Launch> {
    let dir = startup_dir()?;
    Some(launch_from(kind, nonce, dir, std::env::var("ZDOTDIR").ok()))
}

fn launch_from(kind: ShellKind, nonce: &str, dir: &Path, user_zdotdir: Option<String>) -> Launch {
    let mut env = vec![(NONCE_VAR.to_owned(), nonce.to_owned())];
    let args = match kind {
        ShellKind::Bash => vec![
            "--rcfile".to_owned(),
            dir.join("bash.rc").display().to_string(),
        ],
        ShellKind::Zsh => {
            env.push(("ZDOTDIR".to_owned(), dir.join("zsh").display().to_string()));
            if let Some(user) = user_zdotdir {
                env.push((USER_ZDOTDIR_VAR.to_owned(), user));
            }
            Vec::new()
        }
        ShellKind::Sh => {
            env.push(("ENV".to_owned(), dir.join("sh.rc").display().to_string()));
            Vec::new()
        }
    };
    Launch { args, env }
}

/// Returns a fresh random nonce for one session's marks.
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_known_shells() {
        assert_eq!(
            ShellKind::detect(Path::new("/bin/bash")),
            Some(ShellKind::Bash)
        );
        assert_eq!(
            ShellKind::detect(Path::new("/usr/bin/zsh")),
            Some(ShellKind::Zsh)
        );
        assert_eq!(ShellKind::detect(Path::new("/bin/sh")), Some(ShellKind::Sh));
        assert_eq!(ShellKind::detect(Path::new("dash")), Some(ShellKind::Sh));
        assert_eq!(ShellKind::detect(Path::new("/usr/bin/fish")), None);
        assert_eq!(ShellKind::detect(Path::new("/usr/bin/python3")), None);
    }

    #[test]
    fn launch_per_shell() {
        let dir = Path::new("/run/x");
        let bash = launch_from(ShellKind::Bash, "n", dir, None);
        assert_eq!(bash.args, ["--rcfile", "/run/x/bash.rc"]);
        assert_eq!(bash.env, [(NONCE_VAR.to_owned(), "n".to_owned())]);

        let zsh = launch_from(ShellKind::Zsh, "n", dir, Some("/home/u/z".into()));
        assert!(zsh.args.is_empty());
        assert!(
            zsh.env
                .contains(&("ZDOTDIR".to_owned(), "/run/x/zsh".to_owned()))
        );
        assert!(
            zsh.env
                .contains(&(USER_ZDOTDIR_VAR.to_owned(), "/home/u/z".to_owned()))
        );

        let sh = launch_from(ShellKind::Sh, "n", dir, None);
        assert!(
            sh.env
                .contains(&("ENV".to_owned(), "/run/x/sh.rc".to_owned()))
        );
    }

    #[test]
    fn startup_dir_is_private() {
        let dir = startup_dir().expect("the startup files are written");
        let meta = std::fs::metadata(dir).expect("the directory exists");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let rc = std::fs::read_to_string(dir.join("bash.rc")).expect("bash.rc is readable");
        assert_eq!(rc, BASH_RC);
    }
}
