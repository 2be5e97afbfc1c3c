//! Builds the dashboard (`../dashboard`, a Next.js static export) when Node.js is present and
//! the build is missing or older than its sources, then embeds whatever build there is into the
//! gateway (`$OUT_DIR/dashboard.rs`), so that every gateway serves the screen at `/` with no
//! files beside the binary.
//!
//! `EXCHANGE_DASHBOARD_BUILD=0` skips the npm step (the existing build, if any, is embedded).
//! Without Node.js, or when the npm build fails, the exchange still builds: it serves a page
//! that says how to build the screen.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the build reads, relative to `dashboard/` (never `node_modules` or `out`).
const SOURCES: &[&str] = &[
    "app",
    "src",
    "public",
    "package.json",
    "package-lock.json",
    "next.config.ts",
    "postcss.config.mjs",
    "tsconfig.json",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dashboard = manifest.join("../dashboard");
    println!("cargo:rerun-if-env-changed=EXCHANGE_DASHBOARD_BUILD");
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", dashboard.join(s).display());
    }
    let out = dashboard.join("out");
    // A new export (by hand, or by the test script) means a new table: the old one would name
    // files the export removed.
    println!(
        "cargo:rerun-if-changed={}",
        out.join("index.html").display()
    );
    if std::env::var("EXCHANGE_DASHBOARD_BUILD").as_deref() != Ok("0") && dashboard.exists() {
        // Two builds of the gateway (say clippy and the tests) must not run npm at once. A
        // read-only checkout cannot be built into: the export already there is embedded.
        let lock = std::fs::File::create(dashboard.join(".build-lock"));
        match lock.and_then(|l| l.lock().map(|()| l)) {
            Err(e) => println!(
                "cargo:warning=not building the dashboard: cannot lock dashboard/.build-lock ({e})"
            ),
            Ok(_held) => {
                if stale(&dashboard, &out)
                    && let Err(e) = npm_build(&dashboard)
                {
                    println!(
                        "cargo:warning=the dashboard was not built ({e}); / serves a page saying how to build it"
                    );
                }
            }
        }
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("dashboard.rs");
    std::fs::write(&dest, embed(&out)).expect("writing the dashboard's file table");
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time under `path`.
fn newest(path: &Path) -> Option<SystemTime> {
    let mut t = modified(path)?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(n) = newest(&entry.path()) {
                t = t.max(n);
            }
        }
    }
    Some(t)
}

fn stale(dashboard: &Path, out: &Path) -> bool {
    let Some(built) = modified(&out.join("index.html")) else {
        return true;
    };
    SOURCES
        .iter()
        .filter_map(|s| newest(&dashboard.join(s)))
        .any(|t| t > built)
}

fn run(dashboard: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dashboard)
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("npm not found: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm {} failed with {status}", args.join(" ")))
    }
}

fn npm_build(dashboard: &Path) -> Result<(), String> {
    let installed = modified(&dashboard.join("node_modules/.package-lock.json"));
    let locked = modified(&dashboard.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        run(dashboard, &["ci", "--no-audit", "--no-fund"])?;
    }
    run(dashboard, &["run", "build"])
}

fn files(dir: &Path, root: &Path, into: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, root, into);
        } else if let Ok(rel) = path.strip_prefix(root) {
            into.push((format!("/{}", rel.to_string_lossy()), path));
        }
    }
}

/// FNV-1a of the contents: the asset's ETag.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn embed(out: &Path) -> String {
    let mut list = Vec::new();
    if out.join("index.html").exists() {
        files(out, out, &mut list);
    }
    list.sort();
    let mut code = String::from(
        "/// The dashboard's built files: path, ETag, contents.\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (path, file) in &list {
        let bytes = std::fs::read(file).expect("reading a dashboard file");
        let _ = writeln!(
            code,
            "    ({path:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?})),",
            fnv(&bytes),
            file.canonicalize().expect("a built file's path")
        );
    }
    code.push_str("];\n");
    code
}
