//! How the `minirun` binary is linked (the code is untouched):
//!
//! - Relative relocations packed as RELR (`-z pack-relative-relocs`): the
//!   loader reads 3 KB instead of ~240 KB of `.rela.dyn` at every start.
//! - The functions a container's lifecycle runs placed first, in the order they
//!   first run (`hot-functions.txt`, written by bench/hot-functions/record.sh).
//!   A page fault maps the 64 KB around it (the kernel's fault-around): the
//!   0.8 MB of code a `run` executes, scattered over 3.9 MB of text, put 2.5 MB
//!   of it in the runtime's RSS; packed first, 0.84 MB.
//!
//! Both need LLD, rustc's default linker on x86_64 Linux since 1.90; with any
//! other linker the binary is linked as before. A name in the list that no
//! longer exists (renamed code, another rustc) is skipped: a stale list costs
//! memory, never correctness.
//!
//! The binary is also linked statically (static-pie, glibc and libseccomp
//! inside) when built through the top-level build.sh: crt-static can be given
//! to this one crate only on `cargo rustc`'s command line, so build.sh says
//! why and does it.
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=hot-functions.txt");
    println!("cargo:rerun-if-env-changed=RUSTC");
    if !links_with_lld() {
        return;
    }
    let list = format!(
        "{}/hot-functions.txt",
        env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let mut args = vec!["-Wl,-z,pack-relative-relocs".to_string()];
    if std::path::Path::new(&list).is_file() {
        args.push(format!("-Wl,--symbol-ordering-file={list}"));
        args.push("-Wl,--no-warn-symbol-ordering".into());
    }
    for arg in args {
        println!("cargo:rustc-link-arg-bin=minirun={arg}");
    }
}

/// rustc ≥ 1.90 for x86_64-unknown-linux-gnu links with its own LLD unless a
/// linker was chosen in the build's configuration.
fn links_with_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    // Cargo names a linker chosen in its configuration here.
    if env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(release) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
