use std::path::{Path, PathBuf};
use std::process::ExitCode;

use minirun::cli::{Cli, Run};
use minirun::container::lifecycle;
use minirun::process::exit_code;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals a foreground `run` passes on to the container instead of acting on.
const FORWARDED: [Signal; 9] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

pub fn run(cli: &Cli, r: &Run) -> anyhow::Result<ExitCode> {
    let (id, bundle) = id_and_bundle(r);
    let opts = super::create_options(&cli.root, &id, &bundle, &r.args);
    let container = lifecycle::create(&opts)?;
    let init = Pid::from_raw(container.state.pid);

    // Block before start: the container may exit at once, and its SIGCHLD must
    // wait for us rather than be dropped.
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    if !r.detach {
        FORWARDED.iter().for_each(|s| set.add(*s));
    }
    set.thread_block()?;

    if let Err(e) = lifecycle::start(&cli.root, &id) {
        let _ = lifecycle::delete(&cli.root, &id, true);
        return Err(e.into());
    }
    if r.detach {
        return Ok(ExitCode::SUCCESS);
    }

    let code = loop {
        if let Some(code) = reap_init(init) {
            break code;
        }
        let sig = set.wait()?;
        if sig != Signal::SIGCHLD {
            let _ = kill(init, sig);
        }
    };
    lifecycle::delete(&cli.root, &id, true)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Reaps every exited child; returns the init's exit code once it has exited.
fn reap_init(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(st) if st.pid() == Some(init) => code = exit_code(st).or(code),
            Ok(_) => {}
        }
    }
}

/// `run ID` in a bundle (runc's form), or `run DIR` with a bundle directory and a
/// generated id (printed on stderr).
fn id_and_bundle(r: &Run) -> (String, PathBuf) {
    let arg = Path::new(&r.id);
    let is_bundle = r.args.bundle.is_none()
        && arg.join("config.json").is_file()
        && (r.id.contains('/') || !Path::new("config.json").is_file());
    if is_bundle {
        let id = generate_id();
        eprintln!("minirun: container id {id}");
        (id, arg.to_path_buf())
    } else {
        (r.id.clone(), super::bundle_dir(&r.args))
    }
}

fn generate_id() -> String {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        bytes = (std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
