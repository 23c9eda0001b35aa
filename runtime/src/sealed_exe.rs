//! Protection of the runtime binary (CVE-2019-5736).
//!
//! The init and an exec'd process run this binary inside the container's
//! namespaces until they exec the user's program; a process of the container
//! can reach the binary through /proc/<pid>/exe, or make the init exec it
//! (`#!/proc/self/exe`), and then write to it on the host. So `create`, `run`
//! and `exec` first re-execute themselves from a read-only bind mount of the
//! binary: what a container can reach opens only for reading (EROFS).
//!
//! The bind mount is a detached one (`open_tree(OPEN_TREE_CLONE)`, made
//! read-only with `mount_setattr`, executed with `execveat`): it is attached
//! nowhere, so nothing propagates to the host and nothing is left to unmount,
//! and the binary's pages stay shared in the page cache. Copying the binary into
//! a sealed memfd (runc 1.1, crun) does the same job and costs ~3 ms per run
//! here (measured), this ~0.9 ms (one more execve).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

/// Whether this process already runs from a read-only mount.
fn running_read_only() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Whether a command line (without argv[0]) names a verb that runs this
/// binary inside a container: `create`, `run`, `exec`. Read before clap parses
/// it, so that the re-execution comes first and the command line is parsed
/// once, in the re-executed process (a parse costs ~0.15 ms). Only the global
/// flags are known here, so the answer is a hint: `main` calls [`ensure`]
/// again after clap's parse, which is the authority (and a no-op once
/// re-executed).
pub fn wanted_by<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--root" | "--log" | "--log-format") => {
                args.next();
            }
            Some("--debug" | "--systemd-cgroup") => {}
            Some(a) if a.starts_with("--root=") || a.starts_with("--log=") => {}
            Some(a) if a.starts_with("--log-format=") => {}
            Some(verb) => return matches!(verb, "create" | "run" | "exec"),
            None => return false,
        }
    }
    false
}

/// Re-executes from a read-only bind mount of the binary unless already
/// running from one. Returns only on failure.
pub fn ensure() -> io::Result<()> {
    if running_read_only() {
        return Ok(());
    }
    let original = std::env::current_exe()?;
    let tree = crate::mounts::open_tree_clone(&original, false)?;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    crate::mounts::mount_setattr_recursive(&tree, MOUNT_ATTR_RDONLY, 0).map_err(io::Error::from)?;
    // The hook binary is found next to the original, which the re-executed
    // process no longer knows.
    if std::env::var_os(crate::network::HOOK_BIN_ENV).is_none() {
        if let Some(dir) = original.parent() {
            let hook = dir.join("minirun-net");
            if hook.is_file() {
                std::env::set_var(crate::network::HOOK_BIN_ENV, hook);
            }
        }
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    nix::unistd::fexecve(&tree, &args, &env).map_err(io::Error::from)?;
    unreachable!("fexecve returned without an error")
}

#[cfg(test)]
mod tests {
    use super::wanted_by;

    fn line(s: &str) -> Vec<std::ffi::OsString> {
        s.split_whitespace().map(Into::into).collect()
    }

    #[test]
    fn the_verbs_that_enter_a_container_are_found_past_the_global_flags() {
        for yes in [
            "run --bundle b c1",
            "--root /run/x create c1",
            "--root=/run/x --debug --log /l --log-format json exec c1 true",
            "--systemd-cgroup --log-format=json run c1",
        ] {
            assert!(wanted_by(line(yes)), "{yes}");
        }
        for no in [
            "start c1",
            "--root /run/x delete run",
            "--log run state c1",
            "--help",
            "--version",
            "",
            "--root",
        ] {
            assert!(!wanted_by(line(no)), "{no}");
        }
    }
}
