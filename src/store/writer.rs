//! A writer thread for bulk runs: results are handed over without waiting
//! for the store, so a store locked by another process (a writer may wait up
//! to a minute for the lock) never holds up receiving the next results.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::{Location, Store};
use crate::domain::HealthRecord;
use crate::error::{Error, Result};

/// Batches waiting for the writer before [`Writer::offer`] keeps them with
/// the caller; enough to ride out a short lock without holding results twice.
const QUEUE: usize = 16;

/// A thread owning its own connection to a store, saving the health
/// results it is sent in the order they come.
pub struct Writer {
    tx: Option<SyncSender<Vec<HealthRecord>>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Writer {
    /// Opens a second connection to the store at `location` (opening
    /// happens here, so a store that cannot be opened fails before any work)
    /// and starts the thread.
    pub fn start(location: &Location) -> Result<Writer> {
        let store = Store::open(location)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || save_all(store, rx))
            .map_err(|e| Error::internal(format!("cannot start the store writer: {e}")))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `batch` to the writer without waiting. When the writer's queue
    /// is full, the batch stays in `batch` to be offered again later. When
    /// the writer has stopped on an error, that error is returned.
    pub fn offer(&mut self, batch: &mut Vec<HealthRecord>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            return self.finish();
        };
        match tx.try_send(std::mem::take(batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(back)) => {
                *batch = back;
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => self.finish(),
        }
    }

    /// Saves `last` (waiting for room this time), waits until everything
    /// sent is saved, and returns the first error the writer met.
    pub fn finish_with(mut self, last: Vec<HealthRecord>) -> Result<()> {
        if let Some(tx) = &self.tx
            && !last.is_empty()
        {
            // A writer that stopped on an error drops the batch; its error
            // is what the join below reports.
            let _ = tx.send(last);
        }
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        self.tx = None;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::internal("the store writer panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    /// A run abandoned on an error still saves what it had sent.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn save_all(mut store: Store, rx: Receiver<Vec<HealthRecord>>) -> Result<()> {
    for batch in rx {
        store.record_health(&batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::domain::{HealthStatus, RowId};

    #[test]
    fn offers_do_not_wait_for_a_locked_store_and_all_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let location = Location::Sqlite(path.clone());
        drop(Store::open(&location).unwrap());
        let instance = RowId::new();
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute_batch(
                "INSERT INTO users (id, name, created_at) VALUES ('u', 'n', 't');
                 INSERT INTO amc_accounts (id, account_id, account_name, marketplace_id,
                     created_at, updated_at)
                 VALUES ('a', 'ENTITY1', 'n', 'm', 't', 't');",
            )
            .unwrap();
        other
            .execute(
                "INSERT INTO amc_instances (id, user_id, instance_id, name, region, account_id,
                     created_at, updated_at)
                 VALUES (?1, 'u', 'amcabc', 'n', 'na', 'a', 't', 't')",
                [instance],
            )
            .unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();

        let mut writer = Writer::start(&location).unwrap();
        let record = HealthRecord {
            instance,
            checked_at: crate::store::now(),
            status: HealthStatus::Healthy,
            http_status: Some(200),
            latency_ms: Some(3),
            attempts: 1,
            error: None,
        };
        let started = Instant::now();
        let mut pending = Vec::new();
        for _ in 0..QUEUE * 3 {
            pending.push(record.clone());
            writer.offer(&mut pending).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!pending.is_empty(), "a full queue leaves the rest pending");

        other.execute_batch("COMMIT").unwrap();
        writer.finish_with(pending).unwrap();
        let saved: usize = other
            .query_row("SELECT count(*) FROM health_checks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(saved, QUEUE * 3);
    }
}
