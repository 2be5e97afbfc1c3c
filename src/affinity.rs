//! CPU affinity: each request worker on a core of its own (`--pin-workers`).
//!
//! The request workers serve HTTP and run the shards; every other thread of the process (the
//! journal writers, the settle and rollup workers, the runtime's blocking threads) runs on the
//! cores left. On 2 cores with the load generator on the second, this took the request worker
//! from waiting 14% of its time behind other threads on its core to almost none of it (46,800
//! -> 58,600 orders/s, see the README). It is off by default: processes that share a machine
//! (a local cluster) would each pin their workers to the same first cores.

pub use exchange_client::cpus::{allowed_cpus, set_cpus};
use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which CPUs the request workers take (one each, in the order they first go idle) and which
/// the process's other threads share.
#[derive(Debug)]
pub struct CpuPlan {
    workers: Vec<usize>,
    others: Vec<usize>,
    next: AtomicUsize,
}

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

impl CpuPlan {
    /// The first `workers` of `allowed` for the workers, the rest for everything else; `None`
    /// when that leaves no CPU for the rest (pinning would then only take the scheduler's
    /// freedom away).
    pub fn split(allowed: &[usize], workers: usize) -> Option<Self> {
        let workers = workers.max(1);
        if allowed.len() <= workers {
            return None;
        }
        Some(Self {
            workers: allowed[..workers].to_vec(),
            others: allowed[workers..].to_vec(),
            next: AtomicUsize::new(0),
        })
    }

    /// The plan over the CPUs the calling thread may run on.
    pub fn for_this_process(workers: usize) -> io::Result<Option<Self>> {
        Ok(Self::split(&allowed_cpus()?, workers))
    }

    /// The CPUs the workers take.
    pub fn worker_cpus(&self) -> &[usize] {
        &self.workers
    }

    /// The CPUs every other thread shares.
    pub fn other_cpus(&self) -> &[usize] {
        &self.others
    }

    /// Puts the calling thread, and so every thread it starts from now on, on the other CPUs,
    /// and has `builder`'s runtime pin each worker to its CPU the first time it goes idle
    /// (tokio calls `on_thread_park` on its workers only; its blocking threads, which a
    /// pinned worker may start, go back to the other CPUs as they start). Call it on the thread
    /// that builds the runtime, before building it.
    pub fn install(self: Arc<Self>, builder: &mut tokio::runtime::Builder) -> io::Result<()> {
        set_cpus(&self.others)?;
        let on_start = Arc::clone(&self);
        builder
            .on_thread_start(move || {
                if let Err(e) = set_cpus(&on_start.others) {
                    tracing::warn!(error = %e, "could not move a runtime thread to the other CPUs");
                }
            })
            .on_thread_park(move || self.pin_worker_once());
        Ok(())
    }

    fn pin_worker_once(&self) {
        if PINNED.get() {
            return;
        }
        PINNED.set(true);
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let cpu = self.workers[i % self.workers.len()];
        if let Err(e) = set_cpus(&[cpu]) {
            tracing::warn!(cpu, error = %e, "could not pin a request worker");
        }
    }
}

/// `--pin-workers`: installs the plan for this process on `builder`, or says why it does not.
pub fn pin_workers(builder: &mut tokio::runtime::Builder, workers: usize) {
    match CpuPlan::for_this_process(workers) {
        Ok(Some(plan)) => {
            let (pinned, others) = (plan.worker_cpus().to_vec(), plan.other_cpus().to_vec());
            match Arc::new(plan).install(builder) {
                Ok(()) => tracing::info!(
                    ?pinned,
                    ?others,
                    "request workers each on a CPU of their own"
                ),
                Err(e) => tracing::warn!(error = %e, "could not pin the request workers"),
            }
        }
        Ok(None) => tracing::warn!(
            workers,
            "not pinning the request workers: too few CPUs to give each its own and leave one for the rest"
        ),
        Err(e) => tracing::warn!(error = %e, "could not pin the request workers"),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_workers_take_the_first_cpus_and_leave_at_least_one() {
        let plan = CpuPlan::split(&[0, 1, 2, 3], 1).unwrap();
        assert_eq!(
            (plan.worker_cpus(), plan.other_cpus()),
            (&[0][..], &[1, 2, 3][..])
        );
        let plan = CpuPlan::split(&[2, 5, 7], 2).unwrap();
        assert_eq!(
            (plan.worker_cpus(), plan.other_cpus()),
            (&[2, 5][..], &[7][..])
        );
        assert!(CpuPlan::split(&[0, 1], 2).is_none());
        assert!(CpuPlan::split(&[3], 1).is_none());
    }

    /// On a thread of its own, since installing moves the calling thread.
    #[test]
    fn a_worker_runs_on_its_cpu_and_blocking_threads_on_the_others() {
        std::thread::spawn(|| {
            let allowed = allowed_cpus().unwrap();
            let Some(plan) = CpuPlan::split(&allowed, 1) else {
                // One CPU: nothing to split, and the plan says so.
                assert_eq!(allowed.len(), 1);
                return;
            };
            let plan = Arc::new(plan);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(1).enable_all();
            Arc::clone(&plan).install(&mut builder).unwrap();
            assert_eq!(
                allowed_cpus().unwrap(),
                plan.other_cpus(),
                "the building thread"
            );
            let runtime = builder.build().unwrap();
            let (worker, blocking) = runtime.block_on(async {
                tokio::spawn(async {
                    // Waiting lets the worker go idle, which pins it.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    let worker = allowed_cpus().unwrap();
                    let blocking = tokio::task::spawn_blocking(|| allowed_cpus().unwrap())
                        .await
                        .unwrap();
                    (worker, blocking)
                })
                .await
                .unwrap()
            });
            assert_eq!(worker, plan.worker_cpus());
            assert_eq!(blocking, plan.other_cpus());
        })
        .join()
        .unwrap();
    }
}
