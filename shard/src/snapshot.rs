//! Snapshot files: the shard's state at a log offset, so recovery replays only what follows.
//!
//! A file is `MAGIC | offset: u64 | len: u64 | crc32: u32 | payload`, written to a temporary
//! name, synced, and renamed into place, so a crash leaves either the old set or the new one.
//! The two newest are kept; loading takes the newest that checks out.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"EXSHARD1";
const HEADER: usize = 8 + 8 + 8 + 4;
const KEEP: usize = 2;

/// The snapshot files of one shard.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Snapshots kept in `dir` (created when missing).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, offset: u64) -> PathBuf {
        self.dir.join(format!("{offset:020}.snap"))
    }

    /// Writes the state at `offset` durably, then drops all but the newest snapshots.
    pub fn save(&self, offset: u64, payload: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.path(offset);
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&offset.to_le_bytes())?;
        f.write_all(&(payload.len() as u64).to_le_bytes())?;
        f.write_all(&crc32fast::hash(payload).to_le_bytes())?;
        f.write_all(payload)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        for (_, old) in self.list()?.into_iter().skip(KEEP) {
            let _ = fs::remove_file(old);
        }
        Ok(path)
    }

    /// Snapshot files, newest first.
    fn list(&self) -> std::io::Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "snap")
                && let Some(offset) = path
                    .file_stem()
                    .and_then(|s| s.to_str()?.parse::<u64>().ok())
            {
                out.push((offset, path));
            }
        }
        out.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        Ok(out)
    }

    /// Every snapshot that checks out, newest first, as (offset, payload). Damaged ones are
    /// reported and skipped. Read lazily: the caller stops at the first it can restore.
    pub fn load(&self) -> std::io::Result<impl Iterator<Item = (u64, Vec<u8>)>> {
        Ok(self
            .list()?
            .into_iter()
            .filter_map(|(offset, path)| match read(&path) {
                Ok(payload) => Some((offset, payload)),
                Err(why) => {
                    tracing::warn!(path = %path.display(), %why, "skipping a damaged snapshot");
                    None
                }
            }))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a shard snapshot".into());
    }
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_two_and_skips_damaged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        for offset in [10u64, 20, 30] {
            store
                .save(offset, format!("state at {offset}").as_bytes())
                .unwrap();
        }
        let all: Vec<_> = store.load().unwrap().collect();
        assert_eq!(
            all,
            vec![(30, b"state at 30".to_vec()), (20, b"state at 20".to_vec())]
        );
        // Damage the newest: loading falls back to the one before.
        let newest = store.path(30);
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&newest, bytes).unwrap();
        let first = store.load().unwrap().next().unwrap();
        assert_eq!(first.0, 20);
    }
}
