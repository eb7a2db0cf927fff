//! The engine side of the outbox (the pending-upload queue of an offline host; the rules and the
//! metadata keys are in `crate::outbox`): every change to the queue is applied inside one write
//! span of the store.

use chrono::{DateTime, Utc};

use super::{Engine, IngestReport, Inner};
use crate::error::{ErrorKind, Result};
use crate::outbox::{self, MetaChange, PendingExport};
use crate::record::UsageRecord;
use crate::store::ChangeSet;

impl Engine {
    /// Keep `batch` and queue it for upload: each record not already pending (nor acknowledged
    /// within the retention window, see [`crate::outbox`]) is marked pending, then the batch is
    /// ingested like [`Engine::ingest`] (idempotent: a record already stored is a duplicate and
    /// still queued). The markers of records the engine rejects (other than as a conflict with a
    /// stored record, which stays queued under its stored content) are removed again; so are all
    /// new markers when the ingest fails.
    ///
    /// Markers are written first: after a crash between the two steps a marker may name a record
    /// that was never stored (skipped by [`Engine::outbox_pending`], removed by
    /// [`Engine::outbox_purge`]), but a stored record never misses its marker.
    ///
    /// # Errors
    /// As [`Engine::ingest`]; [`ErrorKind::Store`].
    pub fn outbox_queue(&self, batch: &[UsageRecord]) -> Result<IngestReport> {
        let marked = self.outbox_write(|inner| outbox::mark_pending(inner.store.as_ref(), batch))?;
        let report = match self.ingest(batch) {
            Ok(report) => report,
            Err(e) => {
                // Best effort: the ingest's error is the one to report.
                let _ = self.outbox_write(|inner| Ok((outbox::unmark(inner.store.as_ref(), &marked)?, ())));
                return Err(e);
            }
        };
        let rejected: Vec<(String, String)> = report
            .rejected
            .iter()
            .filter(|x| x.kind != ErrorKind::Conflict)
            .map(|x| (x.tenant.clone(), x.id.clone()))
            .collect();
        if !rejected.is_empty() {
            self.outbox_write(|inner| Ok((outbox::unmark(inner.store.as_ref(), &rejected)?, ())))?;
        }
        Ok(report)
    }

    /// Up to `limit` records of `tenant` queued and not yet acknowledged, by id, with their ids
    /// (what to pass to [`Engine::outbox_ack`] once the server confirmed the upload).
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn outbox_pending(&self, tenant: &str, limit: usize) -> Result<PendingExport> {
        outbox::pending(self.lock().store.as_ref(), tenant, limit)
    }

    /// How many records of `tenant` wait for upload: one metadata read (O(1)).
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn outbox_count(&self, tenant: &str) -> Result<u64> {
        outbox::count(self.lock().store.as_ref(), tenant)
    }

    /// Acknowledge the upload of `ids` of `tenant` at `now` (after the server confirmed them):
    /// they leave the queue and are not queued again within the retention window; sent markers
    /// older than the window are removed. Returns how many of `ids` were pending.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn outbox_ack(&self, tenant: &str, ids: &[&str], now: DateTime<Utc>) -> Result<u64> {
        self.outbox_write(|inner| outbox::acknowledge(inner.store.as_ref(), tenant, ids, now))
    }

    /// Tidy the outbox of `tenant`: remove the sent markers acknowledged before `before`, the
    /// pending markers naming no stored record, and recount. Returns how many markers were
    /// removed.
    ///
    /// # Errors
    /// [`ErrorKind::Store`].
    pub fn outbox_purge(&self, tenant: &str, before: DateTime<Utc>) -> Result<u64> {
        self.outbox_write(|inner| outbox::purge(inner.store.as_ref(), tenant, before))
    }

    /// Compute metadata changes and apply them in one write span (retried like every write).
    fn outbox_write<T>(&self, plan: impl Fn(&Inner) -> Result<(Vec<MetaChange>, T)>) -> Result<T> {
        Self::write_call(&mut self.lock(), |inner| {
            let (meta, value) = plan(inner)?;
            if !meta.is_empty() {
                inner.store.apply(&ChangeSet { meta, ..ChangeSet::default() })?;
            }
            Ok(value)
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use crate::engine::Engine;
    use crate::record::UsageRecord;

    fn rec(id: &str, qty: &str) -> UsageRecord {
        let at = Utc.with_ymd_and_hms(2024, 1, 15, 8, 0, 0).unwrap();
        UsageRecord::new("t", id, "m1", "kwh", qty.parse().unwrap(), at)
    }

    #[test]
    fn the_queue_marks_pending_and_acknowledged_records() {
        let e = Engine::in_memory();
        let now = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
        let batch = vec![rec("r0", "1"), rec("r1", "2"), rec("r2", "3")];
        assert_eq!(e.outbox_queue(&batch).unwrap().accepted, 3);
        assert_eq!(e.outbox_count("t").unwrap(), 3);
        assert_eq!(e.outbox_ack("t", &["r0", "r1", "nope"], now).unwrap(), 2);
        let left = e.outbox_pending("t", 10).unwrap();
        assert_eq!(left.ids, vec!["r2"]);
        assert_eq!(left.records[0].quantity.to_string(), "3");
        assert_eq!(e.outbox_queue(&batch).unwrap().duplicates, 3);
        assert_eq!(e.outbox_count("t").unwrap(), 1, "acknowledged records are not queued again");
        assert_eq!(e.outbox_ack("t", &["r0"], now).unwrap(), 0, "not pending twice");
    }

    #[test]
    fn rejected_records_leave_the_queue_and_conflicts_stay() {
        let e = Engine::in_memory();
        e.outbox_queue(&[rec("a", "1")]).unwrap();
        let bad = UsageRecord { tenant: "t".into(), ..rec("", "1") };
        let report = e.outbox_queue(&[bad, rec("a", "9")]).unwrap();
        assert_eq!(report.rejected.len(), 2);
        assert_eq!(e.outbox_count("t").unwrap(), 1);
        assert_eq!(e.outbox_pending("t", 10).unwrap().records[0].quantity.to_string(), "1");
    }

    #[test]
    fn sent_markers_expire_after_the_retention_window() {
        let e = Engine::in_memory();
        let t0 = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
        e.outbox_queue(&[rec("a", "1"), rec("b", "2")]).unwrap();
        e.outbox_ack("t", &["a"], t0).unwrap();
        e.outbox_queue(&[rec("a", "1")]).unwrap();
        assert_eq!(e.outbox_count("t").unwrap(), 1, "within the window");
        // An acknowledgement 31 days later removes the expired marker of `a`.
        e.outbox_ack("t", &["b"], t0 + Duration::days(31)).unwrap();
        e.outbox_queue(&[rec("a", "1")]).unwrap();
        assert_eq!(e.outbox_pending("t", 10).unwrap().ids, vec!["a"]);
        assert_eq!(e.outbox_purge("t", t0 + Duration::days(32)).unwrap(), 1, "the sent marker of b");
        assert_eq!(e.outbox_count("t").unwrap(), 1);
    }

    #[test]
    fn purge_drops_markers_of_unstored_records_and_recounts() {
        let e = Engine::in_memory();
        let t0 = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
        // A marker without its record: what a crash between marking and storing leaves.
        e.outbox_write(|inner| crate::outbox::mark_pending(inner.store.as_ref(), &[rec("ghost", "1")])).unwrap();
        e.outbox_queue(&[rec("a", "1")]).unwrap();
        assert_eq!(e.outbox_count("t").unwrap(), 2);
        assert_eq!(e.outbox_pending("t", 10).unwrap().ids, vec!["a"]);
        assert_eq!(e.outbox_purge("t", t0).unwrap(), 1);
        assert_eq!(e.outbox_count("t").unwrap(), 1);
        assert_eq!(e.outbox_purge("t", t0).unwrap(), 0);
    }
}
