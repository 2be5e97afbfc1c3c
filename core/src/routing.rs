//! Shard routing: which shard owns a symbol.
//!
//! Gateways and shards must agree without talking, and the answer must not change between
//! builds or machines, so the symbol name is hashed with FNV-1a (not std's randomised hasher)
//! and mapped to a shard with Lamping and Veach's jump consistent hash: when the number of
//! shards grows from N to N+1, only about 1/(N+1) of the symbols move.

/// A shard's number, `0..shards`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// FNV-1a, 64 bit: stable across builds and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Jump consistent hash: a bucket in `0..buckets` for `key` (`buckets` must be at least 1).
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    assert!(buckets > 0, "jump_hash needs at least one bucket");
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = (((b + 1) as f64) * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// The shard that owns `symbol` when there are `shards` shards.
pub fn shard_for(symbol: &str, shards: u32) -> ShardId {
    ShardId(jump_hash(fnv1a(symbol.as_bytes()), shards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn jump_hash_matches_the_paper_and_moves_few_keys() {
        // Vectors shared by the published implementations (Lamping & Veach, 2014).
        assert_eq!(jump_hash(1, 1), 0);
        assert_eq!(jump_hash(42, 57), 43);
        assert_eq!(jump_hash(0xDEAD_10CC, 1), 0);
        assert_eq!(jump_hash(0xDEAD_10CC, 666), 361);
        assert_eq!(jump_hash(256, 1024), 520);
        let moved = (0..10_000u64)
            .filter(|&k| jump_hash(k, 10) != jump_hash(k, 11))
            .count();
        // About 1/11 of the keys move; never the others.
        assert!((700..1100).contains(&moved), "{moved} moved");
        for k in 0..10_000u64 {
            let (a, b) = (jump_hash(k, 10), jump_hash(k, 11));
            assert!(a == b || b == 10, "key {k} moved between old shards");
        }
    }

    #[test]
    fn every_shard_count_routes_inside_range() {
        for shards in 1..=16 {
            for s in ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"] {
                assert!(shard_for(s, shards).0 < shards);
            }
        }
        assert_eq!(shard_for("BTC-USD", 1), ShardId(0));
    }
}
