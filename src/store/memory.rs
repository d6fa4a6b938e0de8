//! [`MemoryStore`]: the [`Storage`] model, in memory.

use std::collections::{BTreeMap, HashMap};

use super::{
    check_blob, check_blob_name, check_record_len, check_snapshot, Loaded, Record, RecordId,
    RecordKind, RecoveryReport, Snapshot, Storage, StoreError, MAX_LOG_RECORDS,
};

/// A [`Storage`] that keeps everything in memory.
///
/// It has the semantics of a [`FileStore`](super::FileStore) (same ids, same limits on
/// records, snapshots and blobs, same errors for caller mistakes) without the disk, so tests
/// can use it as the model a `FileStore` is checked against. Its log limit counts the records
/// it holds rather than frames on disk. It never fails otherwise, and never needs recovery.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    snapshot: Option<Snapshot>,
    /// Live records by id: accepted ones after the snapshot, and pending ones.
    records: BTreeMap<u64, (RecordKind, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// The id the next record gets minus one (0 before the first).
    last_id: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn next_id(&mut self) -> Result<u64, StoreError> {
        if self.records.len() >= MAX_LOG_RECORDS {
            return Err(StoreError::LogFull {
                frames: self.records.len(),
                bytes: 0,
            });
        }
        // Ids are u64 and advance by one per call: they cannot overflow in practice, but an
        // overflow is still an error, never a wrap.
        self.last_id = self.last_id.checked_add(1).ok_or(StoreError::LogFull {
            frames: self.records.len(),
            bytes: 0,
        })?;
        Ok(self.last_id)
    }

    /// Removes the live pending record `pending` and uses up an id for the settle step.
    fn take_pending(&mut self, pending: RecordId) -> Result<Vec<u8>, StoreError> {
        if !matches!(self.records.get(&pending.0), Some((RecordKind::Pending, _))) {
            return Err(StoreError::NotPending(pending));
        }
        self.next_id()?;
        match self.records.remove(&pending.0) {
            Some((_, data)) => Ok(data),
            None => Err(StoreError::NotPending(pending)),
        }
    }
}

impl Storage for MemoryStore {
    fn append(&mut self, kind: RecordKind, data: &[u8]) -> Result<RecordId, StoreError> {
        check_record_len(data.len())?;
        let id = self.next_id()?;
        self.records.insert(id, (kind, data.to_vec()));
        Ok(RecordId(id))
    }

    fn accept_pending(&mut self, pending: RecordId) -> Result<RecordId, StoreError> {
        let data = self.take_pending(pending)?;
        self.records
            .insert(self.last_id, (RecordKind::Accepted, data));
        Ok(RecordId(self.last_id))
    }

    fn discard_pending(&mut self, pending: RecordId) -> Result<(), StoreError> {
        self.take_pending(pending).map(drop)
    }

    fn write_snapshot(&mut self, state: &[u8], covers_through: RecordId) -> Result<(), StoreError> {
        let min = self.snapshot.as_ref().map_or(0, |s| s.covers_through.0);
        check_snapshot(state.len(), covers_through.0, min, self.last_id + 1)?;
        self.records
            .retain(|&id, (kind, _)| *kind == RecordKind::Pending || id > covers_through.0);
        self.snapshot = Some(Snapshot {
            covers_through,
            state: state.to_vec(),
        });
        Ok(())
    }

    fn load(&mut self) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            snapshot: self.snapshot.clone(),
            records: self
                .records
                .iter()
                .map(|(&id, (kind, data))| Record {
                    id: RecordId(id),
                    kind: *kind,
                    data: data.clone(),
                })
                .collect(),
            recovered: RecoveryReport::default(),
        })
    }

    fn put_blob(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        check_blob(name, data.len())?;
        self.blobs.insert(name.to_owned(), data.to_vec());
        Ok(())
    }

    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_blob_name(name)?;
        Ok(self.blobs.get(name).cloned())
    }

    fn remove_blob(&mut self, name: &str) -> Result<bool, StoreError> {
        check_blob_name(name)?;
        Ok(self.blobs.remove(name).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promoted_records_move_to_their_new_id() {
        let mut m = MemoryStore::new();
        let p = m.append(RecordKind::Pending, b"p").unwrap();
        let a = m.append(RecordKind::Accepted, b"a").unwrap();
        let q = m.accept_pending(p).unwrap();
        assert!(a < q);
        let ids: Vec<_> = m.load().unwrap().records.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![a, q]);
        assert!(matches!(
            m.accept_pending(p),
            Err(StoreError::NotPending(_))
        ));
        assert!(matches!(
            m.discard_pending(a),
            Err(StoreError::NotPending(_))
        ));
    }

    #[test]
    fn snapshots_keep_pending_records_and_refuse_bad_covers() {
        let mut m = MemoryStore::new();
        let p = m.append(RecordKind::Pending, b"p").unwrap();
        let a = m.append(RecordKind::Accepted, b"a").unwrap();
        m.write_snapshot(b"s", a).unwrap();
        let l = m.load().unwrap();
        assert_eq!(l.records.len(), 1);
        assert_eq!(l.records[0].id, p);
        assert!(matches!(
            m.write_snapshot(b"s", RecordId(a.0 + 1)),
            Err(StoreError::InvalidCover { .. })
        ));
        assert!(matches!(
            m.write_snapshot(b"s", p),
            Err(StoreError::InvalidCover { .. })
        ));
    }
}
