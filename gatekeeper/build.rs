//! The release binary on Linux is linked as a position-dependent executable. A position-
//! independent one starts by relocating about 1.2 MB of the SDK's tables, one written page at a
//! time; without that, `gatekeeper diff` and every other command start in about half the time
//! (bench/diff). The binary image then loads at a fixed address; shared libraries, heap and stack
//! are still placed at random. `GATEKEEPER_PIE=1` at build time keeps the usual PIE.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GATEKEEPER_PIE");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let release = var("PROFILE") == "release";
    let linux = var("CARGO_CFG_TARGET_OS") == "linux";
    if release && linux && std::env::var_os("GATEKEEPER_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
