//! sd_notify through minirun (NOTIFY_SOCKET): the container gets a socket of
//! its own, its READY=1 reaches the manager's socket, and `start` returns only
//! once the container is ready.
//!
//! busybox has no systemd-notify; `logger` writes a datagram to /dev/log, so
//! the container links /dev/log to its NOTIFY_SOCKET and logs a message whose
//! last line is READY=1 (the notify protocol is one assignment per line).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use minirun_tests::Sandbox;

const SAY_READY: &str =
    r#"ln -s "$NOTIFY_SOCKET" /dev/log && logger "$(printf 'started\nREADY=1')""#;

fn manager_socket(sb: &Sandbox) -> (UnixDatagram, std::path::PathBuf) {
    let path = sb.dir.join("manager.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (sock, path)
}

#[test]
fn run_passes_ready_on_to_the_manager() {
    let sb = Sandbox::new("notify-run");
    let (manager, path) = manager_socket(&sb);
    let script =
        format!("echo env=$NOTIFY_SOCKET; ls $(dirname $NOTIFY_SOCKET); {SAY_READY}; echo sent");
    let b = sb.bundle("b", &["/bin/sh", "-c", &script], |_| {});
    let out = sb.run(&format!(
        "NOTIFY_SOCKET={} $MINIRUN run --bundle {} $ID",
        path.display(),
        b.display()
    ));
    out.ok();
    // The manager's path is where the container finds its own socket.
    assert!(
        out.stdout
            .contains(&format!("env={}/notify\n", path.display())),
        "{out:?}"
    );
    assert!(out.stdout.contains("\nnotify\n"), "{out:?}");
    assert!(out.stdout.contains("sent"), "{out:?}");
    let mut buf = [0u8; 256];
    let n = manager
        .recv(&mut buf)
        .expect("READY=1 at the manager's socket");
    assert_eq!(&buf[..n], b"READY=1");
    sb.assert_clean();
}

#[test]
fn start_returns_once_the_container_is_ready() {
    let sb = Sandbox::new("notify-start");
    let (manager, path) = manager_socket(&sb);
    // The marker is written before READY=1: if `start` waited for READY=1,
    // the marker is there when it returns.
    let script = format!("sleep 0.5; touch /marker; {SAY_READY}; sleep 100");
    let b = sb.bundle("b", &["/bin/sh", "-c", &script], |_| {});
    let out = sb.run(&format!(
        "export NOTIFY_SOCKET={}
         $MINIRUN create --bundle {b} $ID
         $MINIRUN start $ID
         test -e {b}/rootfs/marker && echo ready-before-start-returned
         $MINIRUN state $ID | grep -o '\"status\": *\"[a-z]*\"'
         $MINIRUN delete -f $ID",
        path.display(),
        b = b.display()
    ));
    out.ok();
    assert!(
        out.stdout.contains("ready-before-start-returned"),
        "{out:?}"
    );
    assert!(out.stdout.contains("running"), "{out:?}");
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    sb.assert_clean();
}

#[test]
fn start_returns_when_the_container_exits_without_ready() {
    let sb = Sandbox::new("notify-exit");
    let (manager, path) = manager_socket(&sb);
    let b = sb.bundle("b", &["/bin/sh", "-c", "sleep 0.2; exit 3"], |_| {});
    let out = sb.run(&format!(
        "export NOTIFY_SOCKET={}
         $MINIRUN create --bundle {b} $ID
         timeout 20 $MINIRUN start $ID; echo start=$?
         $MINIRUN delete -f $ID",
        path.display(),
        b = b.display()
    ));
    out.ok();
    assert!(out.stdout.contains("start=0"), "{out:?}");
    manager.set_nonblocking(true).unwrap();
    assert!(manager.recv(&mut [0u8; 64]).is_err(), "nothing was ready");
    sb.assert_clean();
}

#[test]
fn a_user_namespace_root_can_notify() {
    let sb = Sandbox::new("notify-userns");
    let (manager, path) = manager_socket(&sb);
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", SAY_READY],
        minirun_tests::user_namespace,
    );
    let out = sb.run(&format!(
        "chown -R 100000:100000 {b}/rootfs
         NOTIFY_SOCKET={} $MINIRUN run --bundle {b} $ID",
        path.display(),
        b = b.display()
    ));
    out.ok();
    let mut buf = [0u8; 256];
    let n = manager
        .recv(&mut buf)
        .expect("READY=1 from a user namespace");
    assert_eq!(&buf[..n], b"READY=1");
    sb.assert_clean();
}
