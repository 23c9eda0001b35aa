use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use minirun::cli::{Cli, Run};
use minirun::console;
use minirun::container::lifecycle;
use minirun::process::foreground;
use nix::unistd::Pid;

pub fn run(cli: &Cli, r: &Run) -> anyhow::Result<u8> {
    let (id, bundle) = id_and_bundle(r);
    let mut opts = super::create_options(cli, &id, &bundle, &r.args);
    // In the foreground without --console-socket, a terminal is relayed by us.
    let relay = if !r.detach && r.args.console_socket.is_none() {
        Some(UnixStream::pair()?)
    } else {
        None
    };
    opts.console_stream = relay.as_ref().map(|(ours, _)| ours);
    // Blocked before the create, which starts the container as soon as it is
    // ready: its SIGCHLD must wait for us. The init takes the mask before
    // back; hooks and the container's process start with nothing blocked.
    if !r.detach {
        opts.init_sigmask = Some(foreground::block()?);
    }
    let (container, released) = lifecycle::create_to_start(&opts)?;
    let signals = if r.detach {
        None
    } else {
        Some(foreground::signal_fd()?)
    };
    let init = Pid::from_raw(container.state.pid);
    // The init sent the pty master (if it has a terminal) before it was ready.
    let master = match &relay {
        Some((_, theirs)) => {
            theirs.set_nonblocking(true)?;
            console::receive_master(theirs).ok()
        }
        None => None,
    };
    drop(relay);

    let notify = match lifecycle::start_created(container, Some(released), r.detach) {
        Ok(proxy) => proxy,
        Err(e) => {
            let _ = lifecycle::delete(&cli.root, &id, true);
            return Err(e.into());
        }
    };
    let Some(signals) = signals else {
        return Ok(0);
    };
    let code = foreground::wait(init, &signals, master, notify)?;
    minirun::trace::point("exited");
    lifecycle::delete(&cli.root, &id, true)?;
    minirun::trace::point("deleted");
    Ok(code.clamp(0, 255) as u8)
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
