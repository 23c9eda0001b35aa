//! Helpers for the integration tests: the built binaries, busybox bundles, and a
//! sandbox (fresh mount, network and pid namespaces with a private state
//! directory) that every test runs its commands in.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::Value;

/// target/<profile>/ of the workspace (the tests live in target/<profile>/deps).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A binary of the workspace; `cargo build --workspace` must have built it.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The busybox bundles built once per test run by bundles/build.sh.
fn built_bundles() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = target_dir().join(format!("test-bundles-{}", std::process::id()));
        let st = Command::new("bash")
            .arg(repo_dir().join("bundles/build.sh"))
            .arg(&out)
            .output()
            .expect("running bundles/build.sh");
        assert!(
            st.status.success(),
            "bundles/build.sh failed: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        out
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: a directory with a private state root, bundles, and
/// the sandbox its commands run in.
pub struct Sandbox {
    pub dir: PathBuf,
    /// A container id unique to this sandbox: cgroups are shared by all tests.
    pub id: String,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The value of a `KEY: value` line the script printed.
    pub fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key}: {self:?}"))
            .to_string()
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Sandbox {
    pub fn new(name: &str) -> Self {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the integration tests run as root"
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{name}-{}-{n}", std::process::id());
        let dir = target_dir().join("sandboxes").join(&id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).unwrap();
        Sandbox { dir, id }
    }

    /// A copy of the busybox bundle with `args` as process.args; `edit` may
    /// change the config further. Returns the bundle directory.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dest = self.dir.join(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(built_bundles().join("hello"))
            .arg(&dest)
            .status()
            .unwrap();
        assert!(st.success());
        let mut config: Value =
            serde_json::from_slice(&fs::read(dest.join("config.json")).unwrap()).unwrap();
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        // The example bundles ask for bridge networking; a test asks for it itself.
        if let Some(a) = config["annotations"].as_object_mut() {
            a.remove("org.minirun.net.mode");
        }
        edit(&mut config);
        fs::write(
            dest.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        dest
    }

    /// Runs a bash script in fresh mount, network and pid namespaces standing in
    /// for the host. The script sees $MINIRUN (the binary with --root set),
    /// $ROOT (the private state dir), $T (this sandbox's directory), $RUNC,
    /// $MINIRUN_NET (the hook binary), $MINIRUN_NET_DIR and
    /// $MINIRUN_NET_CONFIG_DIR (the hook's state and networks, in $T),
    /// $MINIRUN_CLUSTER_CONFIG (a cluster configuration in $T, absent) and
    /// $ID (a container id no other test uses).
    pub fn run(&self, script: &str) -> Output {
        let out = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
            ])
            .args(["bash", "-c", &format!("set -u\n{script}")])
            .env(
                "MINIRUN",
                format!(
                    "{} --root {}",
                    bin("minirun").display(),
                    self.dir.join("state").display()
                ),
            )
            .env("MINIRUN_BIN", bin("minirun"))
            .env("MINIRUN_NET", bin("minirun-net"))
            // The network hook's state and network definitions stay in the sandbox.
            .env("MINIRUN_NET_DIR", self.dir.join("net"))
            .env("MINIRUN_NET_CONFIG_DIR", self.dir.join("networks"))
            // Never the machine's own cluster (/etc/minirun/cluster.json).
            .env("MINIRUN_CLUSTER_CONFIG", self.dir.join("cluster.json"))
            .env("ROOT", self.dir.join("state"))
            .env("T", &self.dir)
            .env("ID", &self.id)
            .env(
                "RUNC",
                format!("runc --root {}", self.dir.join("runc-state").display()),
            )
            .current_dir(&self.dir)
            .output()
            .expect("running unshare");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Nothing of any container is left: no state directory under the root.
    pub fn assert_clean(&self) {
        let left: Vec<_> = fs::read_dir(self.dir.join("state"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state left behind: {left:?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The host ids of a test user namespace's root (chown a rootfs to them).
pub const USERNS_ROOT: u32 = 100000;

/// Gives a config a user namespace mapping 0-65535 to 100000-165535.
pub fn user_namespace(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    let map = serde_json::json!([{"containerID": 0, "hostID": USERNS_ROOT, "size": 65536}]);
    c["linux"]["uidMappings"] = map.clone();
    c["linux"]["gidMappings"] = map;
}

/// Whether a cgroup directory named `id` exists in any hierarchy.
pub fn cgroup_exists(id: &str) -> Option<PathBuf> {
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            id,
        ])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines().next().map(PathBuf::from)
}

/// Removes the directory `name` below the root of every cgroup hierarchy,
/// with what is below it: the parent a client (dockerd, containerd, podman)
/// made for a test's containers and leaves behind. The client's processes
/// die with the sandbox, their cgroups a moment later; panics if they stay.
pub fn remove_cgroup_tree(name: &str) {
    assert!(
        !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
        "{name:?}"
    );
    for _ in 0..50 {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                // v2 alone: /sys/fs/cgroup/NAME; v1: one per hierarchy.
                "d='/sys/fs/cgroup/{name} /sys/fs/cgroup/*/{name}'; find $d -depth -type d -exec rmdir {{}} \\; 2>/dev/null; ! ls -d $d >/dev/null 2>&1"
            ))
            .status()
            .expect("sh");
        if st.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("cgroup directories /{name} are left behind");
}

/// A shell function for sandbox scripts: `leftovers` prints "--left--" and then
/// what networking left behind: links but `lo`, nftables rules, attachment
/// records, leases and host-port claims. Nothing after the marker means clean.
pub const LEFTOVERS: &str = r#"
leftovers() {
    echo "--left--"
    ip -o link show | grep -v ': lo:' | cut -d: -f2
    nft list ruleset
    ls $MINIRUN_NET_DIR/containers 2>/dev/null
    ls $MINIRUN_NET_DIR/networks/*/ 2>/dev/null | grep -E '^[0-9]|:'
    ls $MINIRUN_NET_DIR/ports 2>/dev/null
    true
}
"#;

/// A shell function for sandbox scripts: `netns_holder VAR` starts a process
/// in network and mount namespaces of its own (a container as the network
/// hook sees one) and sets VAR to its pid once it is in them: `unshare`
/// keeps its parent's namespaces for a moment after it starts.
pub const NETNS_HOLDER: &str = r#"
netns_holder() {
    unshare --net --mount sleep 1000 &
    local pid=$! own=$(readlink /proc/self/ns/net)
    while [ "$(readlink /proc/$pid/ns/net 2>/dev/null)" = "$own" ]; do sleep 0.005; done
    eval "$1=$pid"
}
"#;

/// Shell functions for sandbox scripts: `beyond DIR` makes a namespace
/// "beyond the host" behind a veth (the host 198.51.100.2, it 198.51.100.1,
/// with no route back to any container subnet, so an answer proves
/// masquerade) serving DIR over HTTP on 198.51.100.1:8080; `beyond_gone`
/// takes it away. Needs a private /run (`ip netns`), which `beyond` mounts.
pub const BEYOND: &str = r#"
beyond() {
    mount -t tmpfs tmpfs /run
    ip netns add beyond
    ip link add out0 type veth peer name out1
    ip link set out1 netns beyond
    ip addr add 198.51.100.2/24 dev out0 && ip link set out0 up
    ip -n beyond addr add 198.51.100.1/24 dev out1 && ip -n beyond link set out1 up
    ip netns exec beyond busybox httpd -f -p 198.51.100.1:8080 -h "$1" & BEYOND_HTTPD=$!
    sleep 0.2
}
beyond_gone() {
    kill $BEYOND_HTTPD; wait $BEYOND_HTTPD 2>/dev/null
    ip link del out0; ip netns del beyond
}
"#;

/// What `leftovers` reported.
pub fn net_left(out: &Output) -> &str {
    out.stdout
        .split_once("--left--\n")
        .map_or("(no leftovers report)", |(_, l)| l)
}
