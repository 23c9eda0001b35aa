//! libnftables is linked into this package's binary only. A `#[link]` on the
//! library's declarations would put it on the link line of every binary that
//! depends on the library, the runtime's included, which is linked statically
//! and never calls nftables (there is no static libnftables to link).
fn main() {
    println!("cargo:rustc-link-arg-bins=-lnftables");
}
