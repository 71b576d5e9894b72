//! The crate stays pure: its manifest depends on no AWS SDK crate, no async runtime, and not on
//! the canary crate (which is to depend on it); the judge is a test-only dependency without
//! its `aws` feature.

#[test]
fn the_manifest_keeps_the_crate_pure() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for name in deps.keys() {
        assert!(
            !(name.starts_with("aws-") || name == "tokio" || name == "canary"),
            "evidence/Cargo.toml: [dependencies] {name} would make the crate impure"
        );
    }
    let dev = manifest["dev-dependencies"].as_table().unwrap();
    assert_eq!(
        dev["canary"]
            .get("default-features")
            .and_then(|v| v.as_bool()),
        Some(false),
        "evidence/Cargo.toml: the canary dev-dependency must leave out its `aws` feature"
    );
}
