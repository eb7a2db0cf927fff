//! [`RecordRef`]: a usage record's idempotent content, borrowed (a row of columns read in place).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Quality, UsageRecord};

/// A usage record's content borrowed from somewhere else (a row of a column batch), so that it
/// can be checked against the store without building a [`UsageRecord`]
/// ([`Store::compare_stored_refs`](crate::Store::compare_stored_refs)). It has no quality: what
/// is compared is the content of [`UsageRecord::same_content`].
///
/// `dimensions` must be `(name, value)` pairs sorted by name, each name once (a record's map in
/// order); pairs out of order or a name twice may compare either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Caller-chosen id (the idempotency key with `tenant`).
    pub id: &'a str,
    /// The tenant.
    pub tenant: &'a str,
    /// The subject.
    pub subject: &'a str,
    /// The metric.
    pub metric: &'a str,
    /// The quantity, compared by value (`1.5` = `1.50`).
    pub quantity: Decimal,
    /// When the usage starts.
    pub timestamp: DateTime<Utc>,
    /// When it ends, if given.
    pub end: Option<DateTime<Utc>>,
    /// The dimensions, sorted by name.
    pub dimensions: &'a [(&'a str, &'a str)],
}

impl<'p> RecordRef<'p> {
    /// True when `stored` has this content: [`UsageRecord::same_content`] of the record
    /// [`to_record`](RecordRef::to_record) builds.
    pub fn same_content(&self, stored: &UsageRecord) -> bool {
        stored.id == self.id && stored.tenant == self.tenant && self.same_but_keys(stored)
    }

    /// [`same_content`](RecordRef::same_content) but the id and the tenant (which a store has
    /// matched already when it found `stored` by key): the fields held in the record itself
    /// first, the strings last.
    pub(crate) fn same_but_keys(&self, stored: &UsageRecord) -> bool {
        stored.timestamp == self.timestamp
            && stored.quantity == self.quantity
            && stored.end == self.end
            && stored.subject == self.subject
            && stored.metric == self.metric
            && stored.dimensions.len() == self.dimensions.len()
            && stored.dimensions.iter().zip(self.dimensions).all(|((k, v), (rk, rv))| k == rk && v == rv)
    }

    /// `records` as borrowed content, their dimensions kept in `pairs` (one vector for the
    /// batch, so that no record needs an allocation of its own).
    pub fn from_records<'a>(records: &[&'a UsageRecord], pairs: &'p mut Vec<(&'a str, &'a str)>) -> Vec<RecordRef<'p>>
    where
        'a: 'p,
    {
        let mut ends = Vec::with_capacity(records.len());
        for r in records {
            pairs.extend(r.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            ends.push(pairs.len());
        }
        let pairs: &'p [(&'a str, &'a str)] = pairs;
        let mut start = 0;
        records
            .iter()
            .zip(ends)
            .map(|(r, end)| {
                let dimensions = &pairs[start..end];
                start = end;
                RecordRef {
                    id: &r.id,
                    tenant: &r.tenant,
                    subject: &r.subject,
                    metric: &r.metric,
                    quantity: r.quantity,
                    timestamp: r.timestamp,
                    end: r.end,
                    dimensions,
                }
            })
            .collect()
    }

    /// The record of this content (quality `actual`).
    pub fn to_record(&self) -> UsageRecord {
        UsageRecord {
            id: self.id.to_string(),
            tenant: self.tenant.to_string(),
            subject: self.subject.to_string(),
            metric: self.metric.to_string(),
            quantity: self.quantity,
            timestamp: self.timestamp,
            end: self.end,
            dimensions: self.dimensions.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            quality: Quality::default(),
        }
    }
}
