//! `exchange --pin-workers`, the real binary: its request worker runs on the first CPU it may
//! use, and its other threads (the journal writers, the settlement thread) on the rest.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `0-2,5` -> [0, 1, 2, 5]
fn cpu_list(text: &str) -> Vec<usize> {
    text.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// Each thread of `pid`: its name and the CPUs it may run on.
fn threads(pid: u32) -> Vec<(String, Vec<usize>)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some((name.trim().to_owned(), cpu_list(cpus.trim())))
        })
        .collect()
}

#[test]
fn a_pinned_exchange_runs_its_request_worker_on_a_cpu_of_its_own() {
    let allowed = exchange_client::cpus::allowed_cpus().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--workers", "1"])
        .args(["--pin-workers", "--log", "warn"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the exchange binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let pid = child.id();
    let _process = Process(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the exchange prints its address")
            .unwrap();
        if line.starts_with("exchange listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});

    // One CPU: nothing to split; the exchange says so and pins nothing.
    let (first, rest) = match &allowed[..] {
        [first, rest @ ..] if !rest.is_empty() => (vec![*first], rest.to_vec()),
        _ => (allowed.clone(), allowed.clone()),
    };
    let named = |name: &str, ts: &[(String, Vec<usize>)]| {
        ts.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>()
    };
    // The worker pins itself the first time it goes idle: soon after start, not at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let ts = threads(pid);
        if named("tokio-rt-worker", &ts).contains(&first) || Instant::now() > deadline {
            break ts;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        named("tokio-rt-worker", &seen).contains(&first),
        "a request worker on {first:?}: {seen:?}"
    );
    let writers = named("journal-writer", &seen);
    assert_eq!(
        writers.len(),
        2,
        "the journal and the event journal: {seen:?}"
    );
    assert!(writers.iter().all(|c| *c == rest), "{seen:?}");
    assert_eq!(named("functions", &seen), vec![rest], "{seen:?}");
}
