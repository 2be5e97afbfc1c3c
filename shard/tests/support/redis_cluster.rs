//! The local Redis Cluster the tests of the cluster adapters run on (`infra/redis-cluster.sh
//! up`; the test run starts it and sets `EXCHANGE_TEST_REDIS_CLUSTER_URL`), shared by the
//! shard's and the accounts' tests (`#[path]`), and a key namespace per test.

/// The cluster's seed URLs, or `None` (saying which tests skip) when none is configured.
pub fn cluster(tests: &str) -> Option<Vec<String>> {
    match std::env::var("EXCHANGE_TEST_REDIS_CLUSTER_URL") {
        Ok(url) => Some(url.split(',').map(str::to_owned).collect()),
        Err(_) => {
            eprintln!(
                "SKIPPED: {tests} (run infra/redis-cluster.sh up and set \
                 EXCHANGE_TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:7100)"
            );
            None
        }
    }
}

/// A namespace no other run uses.
pub fn namespace() -> String {
    format!(
        "t{}-{}-",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is past 1970")
            .as_nanos()
    )
}
