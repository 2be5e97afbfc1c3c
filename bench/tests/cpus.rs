//! `loadgen --cpus`: the load generator moves onto the CPUs it is given before it does anything
//! else, and says so when it cannot.

use std::process::Command;

/// Runs loadgen with `--cpus` and an admin key file that does not exist: it gets as far as
/// reading the key only if it could move onto the CPUs.
fn loadgen_on(cpus: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--cpus",
            cpus,
            "--admin-key-file",
            "/nonexistent/admin-key.json",
        ])
        .output()
        .expect("running loadgen");
    assert!(!out.status.success(), "loadgen ran without its admin key");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn loadgen_runs_on_the_cpus_it_is_given_or_refuses() {
    let allowed = exchange_client::cpus::allowed_cpus().expect("reading this thread's CPUs");
    let last = allowed.last().expect("at least one CPU").to_string();
    let err = loadgen_on(&last);
    assert!(err.contains("/nonexistent/admin-key.json"), "{err}");
    assert!(!err.contains("running on CPUs"), "{err}");

    let err = loadgen_on("4096");
    assert!(err.contains("running on CPUs [4096]"), "{err}");
}
