//! Invoices: a bill's payment lifecycle, draft → issued → paid | overdue | void.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::billing::Bill;
use crate::error::{Error, ErrorKind, Result};
use crate::notify::Event;
use crate::store::{ChangeSet, Store};
use crate::time::fmt_ts;

/// Where an invoice is in its lifecycle.
///
/// Allowed transitions: `draft → issued` ([`Invoice::issue`]), `issued → overdue`
/// ([`Invoice::mark_overdue`], once `now > due`), `issued | overdue → paid` ([`Invoice::pay`]),
/// `draft | issued | overdue → void` ([`Invoice::void`]). Paid and void are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being prepared; may still change.
    Draft,
    /// Sent to the customer, awaiting payment.
    Issued,
    /// Paid in full.
    Paid,
    /// Unpaid after the due date.
    Overdue,
    /// Cancelled.
    Void,
}

crate::error::enum_names!(
    InvoiceStatus,
    "invoice status",
    [Draft = "draft", Issued = "issued", Paid = "paid", Overdue = "overdue", Void = "void",]
);

/// An invoice for one [`Bill`].
///
/// JSON: `{"id","bill":{…},"status","payment_terms_days","issued_at"?,"due_at"?,"paid_at"?,
/// "voided_at"?}` with RFC 3339 instants.
///
/// ```
/// use meterkit::{invoice::Invoice, invoice::InvoiceStatus};
/// # let bill: meterkit::Bill = serde_json::from_str(r#"{"tenant":"t","subject":"s","period_start":"2024-01-01T00:00:00Z","period_end":"2024-02-01T00:00:00Z","time_zone":"UTC","currency":"GBP","lines":[],"subtotal":"0.00","taxes":"0.00","total":"0.00"}"#)?;
/// use chrono::{TimeZone, Utc};
/// let mut inv = Invoice::new("inv-1", bill, 14);
/// inv.issue(Utc.with_ymd_and_hms(2024, 2, 1, 9, 0, 0).unwrap())?;
/// assert_eq!(inv.due_at.unwrap().to_rfc3339(), "2024-02-15T09:00:00+00:00");
/// assert!(inv.void(Utc.with_ymd_and_hms(2024, 2, 2, 0, 0, 0).unwrap()).is_ok());
/// assert!(inv.pay(Utc.with_ymd_and_hms(2024, 2, 3, 0, 0, 0).unwrap()).is_err()); // void is final
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invoice {
    /// Invoice number, unique per tenant.
    pub id: String,
    /// The bill invoiced.
    pub bill: Bill,
    /// Status.
    pub status: InvoiceStatus,
    /// Days from issue to due date.
    pub payment_terms_days: u32,
    /// When it was issued.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub issued_at: Option<DateTime<Utc>>,
    /// Issue instant + payment terms.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub due_at: Option<DateTime<Utc>>,
    /// When it was paid.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::opt_ts_str")]
    #[cfg_attr(feature = "ts", ts(type = "Timestamp | null"))]
    pub voided_at: Option<DateTime<Utc>>,
}

impl Invoice {
    /// A draft invoice for `bill`, due `payment_terms_days` after it is issued.
    pub fn new(id: impl Into<String>, bill: Bill, payment_terms_days: u32) -> Self {
        Invoice {
            id: id.into(),
            bill,
            status: InvoiceStatus::Draft,
            payment_terms_days,
            issued_at: None,
            due_at: None,
            paid_at: None,
            voided_at: None,
        }
    }

    fn illegal(&self, to: InvoiceStatus) -> Error {
        Error::new(
            ErrorKind::InvalidTransition,
            format!("Invoice '{}' cannot go from {} to {}.", self.id, self.status, to),
        )
        .with_field("status")
    }

    /// Issue a draft at `at`: `due_at = at + payment_terms_days`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTransition`] unless the invoice is a draft.
    pub fn issue(&mut self, at: DateTime<Utc>) -> Result<()> {
        if self.status != InvoiceStatus::Draft {
            return Err(self.illegal(InvoiceStatus::Issued));
        }
        let due = at.checked_add_signed(Duration::days(i64::from(self.payment_terms_days))).ok_or_else(|| {
            Error::new(ErrorKind::InvalidQuery, format!("The due date after {} is out of range.", fmt_ts(at)))
        })?;
        self.status = InvoiceStatus::Issued;
        self.issued_at = Some(at);
        self.due_at = Some(due);
        Ok(())
    }

    /// Record payment at `at`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTransition`] unless the invoice is issued or overdue.
    pub fn pay(&mut self, at: DateTime<Utc>) -> Result<()> {
        if !matches!(self.status, InvoiceStatus::Issued | InvoiceStatus::Overdue) {
            return Err(self.illegal(InvoiceStatus::Paid));
        }
        self.status = InvoiceStatus::Paid;
        self.paid_at = Some(at);
        Ok(())
    }

    /// Void at `at`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidTransition`] for a paid or void invoice.
    pub fn void(&mut self, at: DateTime<Utc>) -> Result<()> {
        if matches!(self.status, InvoiceStatus::Paid | InvoiceStatus::Void) {
            return Err(self.illegal(InvoiceStatus::Void));
        }
        self.status = InvoiceStatus::Void;
        self.voided_at = Some(at);
        Ok(())
    }

    /// Move an issued invoice to overdue when `now` is after its due date; returns whether it
    /// changed (false when not yet due, or not issued — paid, void and overdue stay as they are).
    pub fn mark_overdue(&mut self, now: DateTime<Utc>) -> bool {
        if self.status == InvoiceStatus::Issued && self.due_at.is_some_and(|d| now > d) {
            self.status = InvoiceStatus::Overdue;
            return true;
        }
        false
    }

    /// True when a payment reminder is due at `now`: the invoice is issued (unpaid, not yet
    /// overdue) and `now` lies within `days_before` days before its due date
    /// (`due - days_before <= now <= due`).
    pub fn reminder_due(&self, now: DateTime<Utc>, days_before: u32) -> bool {
        self.status == InvoiceStatus::Issued
            && self.due_at.is_some_and(|due| {
                let from = due.checked_sub_signed(Duration::days(i64::from(days_before)));
                now <= due && from.is_none_or(|from| now >= from)
            })
    }
}

/// The invoices of `invoices` whose payment reminder is due at `now` (see
/// [`Invoice::reminder_due`]), in the given order.
pub fn reminders_due(invoices: &[Invoice], now: DateTime<Utc>, days_before: u32) -> Vec<&Invoice> {
    invoices.iter().filter(|i| i.reminder_due(now, days_before)).collect()
}

fn key(id: &str) -> String {
    format!("invoice/{id}")
}

fn parse(key: &str, json: &str) -> Result<Invoice> {
    serde_json::from_str(json)
        .map_err(|e| Error::new(ErrorKind::Store, format!("The stored invoice '{key}' is unreadable: {e}")))
}

fn save(store: &mut dyn Store, invoice: &Invoice) -> Result<()> {
    let json = serde_json::to_string(invoice)
        .map_err(|e| Error::new(ErrorKind::Store, format!("Invoice '{}' cannot be stored: {e}", invoice.id)))?;
    let meta = vec![(invoice.bill.tenant.clone(), key(&invoice.id), Some(json))];
    store.apply(&ChangeSet { meta, ..ChangeSet::default() }).map(|_| ())
}

/// Issue a draft and store it (engine metadata `invoice/{id}`); the `BillIssued` event to emit.
pub(crate) fn issue_stored(store: &mut dyn Store, invoice: &mut Invoice, at: DateTime<Utc>) -> Result<Event> {
    let mut issued = invoice.clone();
    issued.issue(at)?;
    if store.meta(&issued.bill.tenant, &key(&issued.id))?.is_some() {
        return Err(Error::new(ErrorKind::Conflict, format!("Invoice '{}' is already stored.", issued.id)));
    }
    save(store, &issued)?;
    *invoice = issued;
    Ok(Event::BillIssued {
        tenant: invoice.bill.tenant.clone(),
        invoice: invoice.id.clone(),
        subject: invoice.bill.subject.clone(),
        currency: invoice.bill.currency.clone(),
        total: invoice.bill.total,
        due_at: invoice.due_at.unwrap_or(at),
    })
}

/// Every stored invoice of `tenant`, by id.
pub(crate) fn load_all(store: &dyn Store, tenant: &str) -> Result<Vec<Invoice>> {
    store.meta_prefix(tenant, "invoice/")?.into_iter().map(|(k, v)| parse(&k, &v)).collect()
}

/// Apply `change` to a stored invoice and store the result (nothing is stored if it fails).
pub(crate) fn update_stored(
    store: &mut dyn Store,
    tenant: &str,
    id: &str,
    change: impl FnOnce(&mut Invoice) -> Result<()>,
) -> Result<Invoice> {
    let Some(json) = store.meta(tenant, &key(id))? else {
        return Err(Error::new(ErrorKind::NotFound, format!("No invoice '{id}' is stored for tenant '{tenant}'.")));
    };
    let mut inv = parse(&key(id), &json)?;
    change(&mut inv)?;
    save(store, &inv)?;
    Ok(inv)
}

/// Mark the stored issued invoices of `tenant` that are past due overdue; the changed invoices
/// and their `InvoiceOverdue` events.
pub(crate) fn mark_overdue_stored(
    store: &mut dyn Store,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<Invoice>, Vec<Event>)> {
    let mut changed = Vec::new();
    for mut inv in load_all(store, tenant)? {
        if inv.mark_overdue(now) {
            save(store, &inv)?;
            changed.push(inv);
        }
    }
    let events = changed
        .iter()
        .map(|i| Event::InvoiceOverdue {
            tenant: tenant.to_string(),
            invoice: i.id.clone(),
            subject: i.bill.subject.clone(),
            total: i.bill.total,
            due_at: i.due_at.unwrap_or(now),
        })
        .collect();
    Ok((changed, events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn bill() -> Bill {
        serde_json::from_str(
            r#"{"tenant":"t","subject":"s","period_start":"2024-01-01T00:00:00Z","period_end":"2024-02-01T00:00:00Z",
            "time_zone":"UTC","currency":"GBP","lines":[],"subtotal":"10.00","taxes":"0.50","total":"10.50"}"#,
        )
        .unwrap()
    }

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 2, d, h, 0, 0).unwrap()
    }

    #[test]
    fn lifecycle_and_overdue() {
        let mut inv = Invoice::new("i1", bill(), 14);
        assert_eq!(inv.pay(at(1, 0)).unwrap_err().kind(), ErrorKind::InvalidTransition);
        assert!(!inv.mark_overdue(at(28, 0)));
        inv.issue(at(1, 9)).unwrap();
        assert_eq!(inv.due_at, Some(at(15, 9)));
        assert_eq!(inv.issue(at(2, 0)).unwrap_err().kind(), ErrorKind::InvalidTransition);
        // Exactly at the due instant it is not overdue yet; one hour later it is.
        assert!(!inv.mark_overdue(at(15, 9)));
        assert!(inv.mark_overdue(at(15, 10)));
        assert_eq!(inv.status, InvoiceStatus::Overdue);
        assert!(!inv.mark_overdue(at(16, 0)));
        inv.pay(at(20, 0)).unwrap();
        assert_eq!(inv.status, InvoiceStatus::Paid);
        assert_eq!(inv.void(at(21, 0)).unwrap_err().kind(), ErrorKind::InvalidTransition);
        assert_eq!(inv.pay(at(21, 0)).unwrap_err().message(), "Invoice 'i1' cannot go from paid to paid.");
    }

    #[test]
    fn engine_stores_invoices_and_emits_events_once() {
        use crate::{notify::CollectingNotifier, Engine, Event};
        let n = std::sync::Arc::new(CollectingNotifier::new());
        let engine = Engine::in_memory().with_notifier(n.clone());
        let mut inv = Invoice::new("i1", bill(), 14);
        engine.issue_invoice(&mut inv, at(1, 9)).unwrap();
        assert_eq!(inv.status, InvoiceStatus::Issued);
        let ev = n.take();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            serde_json::to_string(&ev[0]).unwrap(),
            r#"{"type":"bill_issued","tenant":"t","invoice":"i1","subject":"s","currency":"GBP","total":"10.50","due_at":"2024-02-15T09:00:00Z"}"#
        );
        let mut again = Invoice::new("i1", bill(), 14);
        assert_eq!(engine.issue_invoice(&mut again, at(2, 0)).unwrap_err().kind(), ErrorKind::Conflict);
        assert!(engine.mark_overdue("t", at(15, 9)).unwrap().is_empty());
        assert_eq!(engine.mark_overdue("t", at(16, 0)).unwrap().len(), 1);
        assert!(engine.mark_overdue("t", at(17, 0)).unwrap().is_empty());
        let ev = n.take();
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], Event::InvoiceOverdue { invoice, .. } if invoice == "i1"));
        let paid = engine.update_invoice("t", "i1", |i| i.pay(at(18, 0))).unwrap();
        assert_eq!(paid.status, InvoiceStatus::Paid);
        let e = engine.update_invoice("t", "i1", |i| i.void(at(19, 0))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTransition);
        assert_eq!(engine.invoices("t").unwrap()[0].status, InvoiceStatus::Paid);
        let mut second = Invoice::new("i2", bill(), 14);
        engine.issue_invoice(&mut second, at(10, 9)).unwrap(); // due 24 Feb 09:00
        let due = |h| engine.reminders_due("t", at(21, h), 3).unwrap().iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(due(8), Vec::<String>::new());
        assert_eq!(due(9), vec!["i2".to_string()]);
        assert_eq!(engine.update_invoice("t", "nope", |_| Ok(())).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn reminders() {
        let mut a = Invoice::new("a", bill(), 14);
        a.issue(at(1, 9)).unwrap(); // due 15th 09:00
        let mut b = Invoice::new("b", bill(), 30);
        b.issue(at(1, 9)).unwrap(); // due 2 March 09:00
        let draft = Invoice::new("c", bill(), 14);
        let all = vec![a.clone(), b, draft];
        // 3 days before the 15th 09:00 is the 12th 09:00.
        assert!(reminders_due(&all, at(12, 8), 3).is_empty());
        let due: Vec<&str> = reminders_due(&all, at(12, 9), 3).iter().map(|i| i.id.as_str()).collect();
        assert_eq!(due, ["a"]);
        a.pay(at(13, 0)).unwrap();
        assert!(!a.reminder_due(at(14, 0), 3));
        // A window reaching before the earliest date does not overflow.
        assert!(all[1].reminder_due(at(2, 0), u32::MAX));
    }
}
