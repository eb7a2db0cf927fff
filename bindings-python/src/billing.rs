//! Tariffs, bill requests, bills, invoices, quotas and shared-meter allocation: Python classes over
//! the core's billing types. Rating happens in the core (`Tariff::bill`, `Engine::bill`) with the
//! GIL released.

use chrono::{DateTime, Utc};
use meterkit::{Decimal, ErrorKind};
use pyo3::prelude::*;

use crate::convert::{from_decimal, from_json, from_plain, from_utc, to_decimal, to_json, to_plain, to_utc};
use crate::errors::{detached, new_err, IntoPy};
use crate::types::PyUsageRecord;

/// The common methods of a class over a serde type: `from_dict`, `from_json`, `to_dict`,
/// equality; plus the class's own methods.
macro_rules! serde_class {
    ($py:ident, $what:literal, { $($body:tt)* }) => {
        serde_class!($py, $what, |v| meterkit::Result::Ok(v), { $($body)* });
    };
    ($py:ident, $what:literal, |$v:ident| $check:expr, { $($body:tt)* }) => {
        #[pymethods]
        impl $py {
            /// The value from its canonical JSON shape (as `to_dict()` returns), checked.
            #[staticmethod]
            fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
                let $v = from_plain(data, $what)?;
                Ok(Self { inner: $check.py()? })
            }
            /// The value from JSON text, checked.
            #[staticmethod]
            fn from_json(text: &str) -> PyResult<Self> {
                let $v = from_json(text, $what)?;
                Ok(Self { inner: $check.py()? })
            }
            /// The canonical JSON shape as plain Python (decimals and instants as strings).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_plain(py, &self.inner)
            }
            fn __eq__(&self, other: &Self) -> bool {
                self.inner == other.inner
            }
            $($body)*
        }
    };
}

fn utc(t: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    to_utc(t, field, ErrorKind::InvalidQuery)
}

/// A tariff: charges (fixed, per unit, tiered, time of use, demand, minimum, percentage, tax)
/// in a currency, possibly in dated versions.
#[pyclass(module = "meterkit", frozen, name = "Tariff")]
#[derive(Clone)]
pub struct PyTariff {
    pub inner: meterkit::Tariff,
}

serde_class!(PyTariff, "tariff", |t| meterkit::Tariff::into_checked(t), {
    /// Parse and check a TOML tariff.
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        Ok(PyTariff { inner: meterkit::Tariff::from_toml(text).py()? })
    }
    /// Import an OpenEI URDB rate (one rate object or `{"items":[rate]}`). `day_count`:
    /// `"actual"` (default) or `"pysam"` (365/12 days for `$/day` amounts); `line_decimals`:
    /// places of each bill line (default: cents).
    #[staticmethod]
    #[pyo3(signature = (text, *, day_count = "actual", line_decimals = None))]
    fn from_urdb_json(text: &str, day_count: &str, line_decimals: Option<u32>) -> PyResult<Self> {
        let opts = urdb_options(day_count, line_decimals)?;
        Ok(PyTariff { inner: meterkit::Tariff::from_urdb_json_with(text, opts).py()? })
    }
    /// Price one load under many tariffs (the core's `Tariff::compare`): `tariffs` as
    /// `(name, Tariff)` pairs, the request's period split into local calendar months. Returns
    /// `[{"tariff", "total": Decimal | None, "periods": [{"period", "total": Decimal}],
    /// "error": str | None}]`, cheapest first.
    #[staticmethod]
    fn compare<'py>(
        py: Python<'py>,
        tariffs: &Bound<'py, PyAny>,
        request: &PyBillRequest,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        let named = named_tariffs(tariffs)?;
        let recs = usage_records(records)?;
        let req = request.inner.clone();
        let ranked =
            detached(py, move || meterkit::Tariff::compare(named.iter().map(|(n, t)| (n.as_str(), t)), &req, &recs))?;
        ranked.into_iter().map(|c| comparison(py, c)).collect()
    }
    /// What the published tariff says but does not price (shown on bills as `not priced: …`).
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }
    /// A meterkit tariff in TOML or JSON, or a URDB rate, detected from the content.
    #[staticmethod]
    fn from_any(text: &str) -> PyResult<Self> {
        Ok(PyTariff { inner: meterkit::Tariff::from_any(text).py()? })
    }
    /// Compact JSON of the tariff (the core's serde_json).
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    #[getter]
    fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }
    #[getter]
    fn currency(&self) -> &str {
        &self.inner.currency
    }
    /// Minor-unit digits of the currency (2 for GBP, 0 for JPY, 3 for KWD).
    fn minor_units(&self) -> PyResult<u32> {
        self.inner.minor_units().py()
    }
    /// Every metric the tariff's charges read when billing `bill_metric`.
    fn metrics(&self, bill_metric: &str) -> Vec<String> {
        self.inner.metrics(bill_metric)
    }
    /// The total of a period's charges for `quantity` alone (no time of use, no demand): what a
    /// budget or a price calculator needs (the core's `Tariff::quantity_rater`). Raises
    /// `ParseError` for a quantity that is not a decimal, `TariffError` for a tariff whose
    /// charges need more than a quantity, `DecimalOverflowError`.
    fn quantity_total<'py>(&self, py: Python<'py>, quantity: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let q = to_decimal(quantity, "quantity")?;
        let rater = self.inner.quantity_rater().py()?;
        from_decimal(py, rater.total(q).py()?)
    }
    /// Check the tariff (the constructors already do).
    fn check(&self) -> PyResult<()> {
        self.inner.check().py()
    }
    /// Rate `records` for `request` (no store): the core's `Tariff::bill`.
    fn bill(&self, py: Python<'_>, request: &PyBillRequest, records: &Bound<'_, PyAny>) -> PyResult<PyBill> {
        let recs = usage_records(records)?;
        let (t, req) = (self.inner.clone(), request.inner.clone());
        Ok(PyBill { inner: detached(py, move || t.bill(&req, &recs))? })
    }
    fn __repr__(&self) -> String {
        format!(
            "Tariff(name={:?}, currency={:?}, charges={}, versions={})",
            self.inner.name.as_deref().unwrap_or(""),
            self.inner.currency,
            self.inner.charges.len(),
            self.inner.versions.len()
        )
    }
});

/// `(name, Tariff)` pairs from any iterable of 2-tuples.
fn named_tariffs(tariffs: &Bound<'_, PyAny>) -> PyResult<Vec<(String, meterkit::Tariff)>> {
    let mut named = Vec::new();
    for item in tariffs.try_iter()? {
        let (name, t): (String, Bound<'_, PyAny>) = item?.extract()?;
        named.push((name, t.cast::<PyTariff>().map_err(PyErr::from)?.get().inner.clone()));
    }
    Ok(named)
}

/// The core records of any iterable of `UsageRecord`.
fn usage_records(records: &Bound<'_, PyAny>) -> PyResult<Vec<meterkit::UsageRecord>> {
    let mut recs = Vec::new();
    for r in records.try_iter()? {
        recs.push(r?.cast::<PyUsageRecord>().map_err(PyErr::from)?.get().inner.clone());
    }
    Ok(recs)
}

/// One load prepared once for pricing under many tariffs (the core's
/// `billing::compare::PreparedLoad`): `request`'s period cut into local calendar months, each
/// month's records summed once. `compare` and `bills` then price it without reading the records
/// again. Raises `InvalidTimeZone`, `InvalidQuery` (an empty period, more than 1,200 months),
/// `DecimalOverflowError`.
#[pyclass(module = "meterkit", frozen, name = "PreparedLoad")]
pub struct PyPreparedLoad {
    inner: std::sync::Arc<meterkit::billing::compare::PreparedLoad<'static>>,
}

#[pymethods]
impl PyPreparedLoad {
    #[new]
    fn new(py: Python<'_>, request: &PyBillRequest, records: &Bound<'_, PyAny>) -> PyResult<Self> {
        let recs = usage_records(records)?;
        let req = request.inner.clone();
        let load = detached(py, move || {
            meterkit::billing::compare::PreparedLoad::new(&req, &recs)
                .map(meterkit::billing::compare::PreparedLoad::into_owned)
        })?;
        Ok(PyPreparedLoad { inner: std::sync::Arc::new(load) })
    }
    /// `Tariff.compare` on the prepared load: `tariffs` as `(name, Tariff)` pairs; returns
    /// `[{"tariff", "total": Decimal | None, "periods": [{"period", "total": Decimal}],
    /// "error": str | None}]`, cheapest first.
    fn compare<'py>(
        &self,
        py: Python<'py>,
        tariffs: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        let named = named_tariffs(tariffs)?;
        let load = std::sync::Arc::clone(&self.inner);
        let ranked = detached(py, move || Ok(load.compare(named.iter().map(|(n, t)| (n.as_str(), t)))))?;
        ranked.into_iter().map(|c| comparison(py, c)).collect()
    }
    /// The tariff-year's bills under `tariff`: one `Bill` per local calendar month, in order (the
    /// year's carried credit, ratchet peaks and annual minimum carry from bill to bill). Raises
    /// `TariffError` and the errors of `Tariff.bill`.
    fn bills(&self, py: Python<'_>, tariff: &PyTariff) -> PyResult<Vec<PyBill>> {
        let (load, t) = (std::sync::Arc::clone(&self.inner), tariff.inner.clone());
        let bills = detached(py, move || load.bills(&t))?;
        Ok(bills.into_iter().map(|b| PyBill { inner: b }).collect())
    }
    /// How many local calendar months (bills) the load spans.
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    /// The request of month `i` (0-based), the load's request cut to that local month; raises
    /// `IndexError` past the last month.
    fn month_request(&self, i: usize) -> PyResult<PyBillRequest> {
        self.inner.month_request(i).map(|inner| PyBillRequest { inner }).ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!("month {i} of a load of {} months", self.inner.len()))
        })
    }
    fn __repr__(&self) -> String {
        format!("PreparedLoad(months={})", self.inner.len())
    }
}

/// What to bill: the usage of one metric in `[period_start, period_end)` of one subject, a set of
/// subjects (`subjects=`) or the whole tenant (`subject=None`), optionally filtered by dimension
/// values (`filter=`); `per_subject=True` adds each subject's usage to the bill.
#[pyclass(module = "meterkit", frozen, name = "BillRequest")]
#[derive(Clone)]
pub struct PyBillRequest {
    pub inner: meterkit::BillRequest,
}

#[pymethods]
impl PyBillRequest {
    #[new]
    #[pyo3(signature = (tenant, subject, metric, period_start, period_end, time_zone, *, subjects=None, filter=None, per_subject=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        tenant: String,
        subject: Option<String>,
        metric: String,
        period_start: &Bound<'_, PyAny>,
        period_end: &Bound<'_, PyAny>,
        time_zone: String,
        subjects: Option<Vec<String>>,
        filter: Option<std::collections::BTreeMap<String, String>>,
        per_subject: bool,
    ) -> PyResult<Self> {
        let (s, e) = (utc(period_start, "period_start")?, utc(period_end, "period_end")?);
        let mut inner = meterkit::BillRequest::new(tenant, subject.unwrap_or_default(), metric, s, e, time_zone);
        inner.subjects = subjects.unwrap_or_default();
        inner.filter = filter.unwrap_or_default();
        inner.per_subject = per_subject;
        inner.check().py()?;
        Ok(PyBillRequest { inner })
    }
    /// The request for calendar month `yyyy_mm` (e.g. `"2024-02"`) in `time_zone`.
    #[staticmethod]
    fn for_month(tenant: String, subject: String, metric: String, yyyy_mm: &str, time_zone: String) -> PyResult<Self> {
        let tz = meterkit::time::parse_time_zone(&time_zone).py()?;
        let (s, e) = meterkit::billing::month_period(yyyy_mm, tz).py()?;
        Ok(PyBillRequest { inner: meterkit::BillRequest::new(tenant, subject, metric, s, e, time_zone) })
    }
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyBillRequest { inner: from_plain(data, "bill request")? })
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    /// The one subject billed, `None` for a set of subjects or the whole tenant.
    #[getter]
    fn subject(&self) -> Option<&str> {
        (!self.inner.subject.is_empty()).then_some(self.inner.subject.as_str())
    }
    #[getter]
    fn subjects(&self) -> Vec<String> {
        self.inner.subjects.clone()
    }
    #[getter]
    fn filter(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.filter.clone()
    }
    #[getter]
    fn per_subject(&self) -> bool {
        self.inner.per_subject
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn period_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.period_start)
    }
    #[getter]
    fn period_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.period_end)
    }
    #[getter]
    fn time_zone(&self) -> &str {
        &self.inner.time_zone
    }
    fn __repr__(&self) -> String {
        format!("BillRequest({})", serde_json::to_string(&self.inner).unwrap_or_default())
    }
}

/// One line of a bill: `amount` = `quantity` × `rate`, rounded to the minor unit.
#[pyclass(module = "meterkit", frozen, name = "BillLine")]
#[derive(Clone)]
pub struct PyBillLine {
    pub inner: meterkit::billing::BillLine,
}

serde_class!(PyBillLine, "bill line", {
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    #[getter]
    fn charge(&self) -> &str {
        &self.inner.charge
    }
    #[getter]
    fn description(&self) -> &str {
        &self.inner.description
    }
    #[getter]
    fn quantity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.quantity)
    }
    #[getter]
    fn unit(&self) -> &str {
        &self.inner.unit
    }
    #[getter]
    fn rate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.rate)
    }
    /// Money with the currency's minor-unit digits (`Decimal('12.50')`).
    #[getter]
    fn amount<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        money(py, self.inner.amount)
    }
    #[getter]
    fn tier(&self) -> Option<u32> {
        self.inner.tier
    }
    #[getter]
    fn tou_period(&self) -> Option<&str> {
        self.inner.tou_period.as_deref()
    }
    fn __repr__(&self) -> String {
        format!(
            "BillLine(charge={:?}, description={:?}, quantity=Decimal('{}'), unit={:?}, amount=Decimal('{}'))",
            self.inner.charge,
            self.inner.description,
            meterkit::decimal::fmt_decimal(self.inner.quantity),
            self.inner.unit,
            self.inner.amount
        )
    }
});

/// Money keeps its minor-unit digits (the core's `money_str`): `12.50`, not `12.5`.
fn urdb_options(day_count: &str, line_decimals: Option<u32>) -> PyResult<meterkit::tariff::urdb::UrdbOptions> {
    let day_count = match day_count {
        "actual" => meterkit::tariff::urdb::DayCount::Actual,
        "pysam" => meterkit::tariff::urdb::DayCount::PySam,
        other => {
            let msg = format!("day_count is 'actual' or 'pysam', not '{other}'.");
            return Err(new_err(ErrorKind::InvalidQuery, msg, Some("day_count")));
        }
    };
    Ok(meterkit::tariff::urdb::UrdbOptions { day_count, line_decimals })
}

/// One `Comparison` as a dict with `Decimal` money.
fn comparison(py: Python<'_>, c: meterkit::billing::compare::Comparison) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    use pyo3::types::PyDict;
    let d = PyDict::new(py);
    d.set_item("tariff", c.tariff)?;
    d.set_item("total", c.total.map(|t| money(py, t)).transpose()?)?;
    let periods = c
        .periods
        .into_iter()
        .map(|p| {
            let pd = PyDict::new(py);
            pd.set_item("period", p.period)?;
            pd.set_item("total", money(py, p.total)?)?;
            Ok(pd)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("periods", periods)?;
    d.set_item("error", c.error)?;
    Ok(d)
}

fn money(py: Python<'_>, d: Decimal) -> PyResult<Bound<'_, PyAny>> {
    let text = meterkit::decimal::fmt_money(d);
    py.import("decimal")?.getattr("Decimal")?.call1((text,))
}

/// A bill: lines in tariff order, subtotal, taxes and total.
#[pyclass(module = "meterkit", frozen, name = "Bill")]
#[derive(Clone)]
pub struct PyBill {
    pub inner: meterkit::Bill,
}

serde_class!(PyBill, "bill", {
    /// JSON of the bill: by default exactly what `meterkit bill --output json` prints (without
    /// its final newline); `indent=False` gives compact JSON.
    #[pyo3(signature = (*, indent=true))]
    fn to_json(&self, indent: bool) -> PyResult<String> {
        if indent {
            serde_json::to_string_pretty(&self.inner).map_err(|e| new_err(ErrorKind::Tariff, e.to_string(), None))
        } else {
            to_json(&self.inner)
        }
    }
    /// The lines as text rows (`charge, description, quantity, unit, rate, amount, tier`) followed
    /// by subtotal, taxes and total rows: what the CLI's table and CSV print.
    fn table_rows(&self) -> Vec<Vec<String>> {
        self.inner.to_table_rows().into_iter().map(Vec::from).collect()
    }
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    #[getter]
    fn subject(&self) -> &str {
        &self.inner.subject
    }
    #[getter]
    fn period_start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.period_start)
    }
    #[getter]
    fn period_end<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_utc(py, self.inner.period_end)
    }
    #[getter]
    fn time_zone(&self) -> &str {
        &self.inner.time_zone
    }
    #[getter]
    fn currency(&self) -> &str {
        &self.inner.currency
    }
    #[getter]
    fn lines(&self) -> Vec<PyBillLine> {
        self.inner.lines.iter().map(|l| PyBillLine { inner: l.clone() }).collect()
    }
    #[getter]
    fn subtotal<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        money(py, self.inner.subtotal)
    }
    #[getter]
    fn taxes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        money(py, self.inner.taxes)
    }
    #[getter]
    fn total<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        money(py, self.inner.total)
    }
    /// Each subject's usage when the request asked `per_subject=True`: dicts
    /// `{"subject": str, "quantity": Decimal, "records": int}`, by subject.
    #[getter]
    fn per_subject<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        self.inner
            .per_subject
            .iter()
            .map(|u| {
                let d = pyo3::types::PyDict::new(py);
                d.set_item("subject", &u.subject)?;
                d.set_item("quantity", from_decimal(py, u.quantity)?)?;
                d.set_item("records", u.records)?;
                Ok(d)
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Bill(subject={:?}, period_start='{}', period_end='{}', currency={:?}, lines={}, total=Decimal('{}'))",
            self.inner.subject,
            meterkit::time::fmt_ts(self.inner.period_start),
            meterkit::time::fmt_ts(self.inner.period_end),
            self.inner.currency,
            self.inner.lines.len(),
            self.inner.total
        )
    }
});

/// An invoice for one bill: draft → issued → paid | overdue | void. Immutable: each transition
/// returns a new invoice (the engine's invoice methods store it).
#[pyclass(module = "meterkit", frozen, name = "Invoice")]
#[derive(Clone)]
pub struct PyInvoice {
    pub inner: meterkit::invoice::Invoice,
}

impl PyInvoice {
    fn step(&self, f: impl FnOnce(&mut meterkit::invoice::Invoice) -> meterkit::Result<()>) -> PyResult<Self> {
        let mut inv = self.inner.clone();
        f(&mut inv).py()?;
        Ok(PyInvoice { inner: inv })
    }
}

fn status_name(s: meterkit::invoice::InvoiceStatus) -> String {
    s.to_string()
}

#[pymethods]
impl PyInvoice {
    /// A draft invoice for `bill`, due `payment_terms_days` after it is issued.
    #[new]
    fn new(id: String, bill: &PyBill, payment_terms_days: u32) -> Self {
        PyInvoice { inner: meterkit::invoice::Invoice::new(id, bill.inner.clone(), payment_terms_days) }
    }
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyInvoice { inner: from_plain(data, "invoice")? })
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
    /// This invoice issued at `at` (due `payment_terms_days` later).
    fn issue(&self, at: &Bound<'_, PyAny>) -> PyResult<Self> {
        let at = utc(at, "at")?;
        self.step(|i| i.issue(at))
    }
    /// This invoice paid at `at`.
    fn pay(&self, at: &Bound<'_, PyAny>) -> PyResult<Self> {
        let at = utc(at, "at")?;
        self.step(|i| i.pay(at))
    }
    /// This invoice voided at `at`.
    fn void(&self, at: &Bound<'_, PyAny>) -> PyResult<Self> {
        let at = utc(at, "at")?;
        self.step(|i| i.void(at))
    }
    /// This invoice, overdue if it is issued and `now` is past its due date.
    fn mark_overdue(&self, now: &Bound<'_, PyAny>) -> PyResult<Self> {
        let now = utc(now, "now")?;
        self.step(|i| {
            i.mark_overdue(now);
            Ok(())
        })
    }
    /// True when a payment reminder is due at `now` (issued, due within `days_before` days).
    fn reminder_due(&self, now: &Bound<'_, PyAny>, days_before: u32) -> PyResult<bool> {
        Ok(self.inner.reminder_due(utc(now, "now")?, days_before))
    }
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn bill(&self) -> PyBill {
        PyBill { inner: self.inner.bill.clone() }
    }
    /// `draft`, `issued`, `paid`, `overdue` or `void`.
    #[getter]
    fn status(&self) -> String {
        status_name(self.inner.status)
    }
    #[getter]
    fn payment_terms_days(&self) -> u32 {
        self.inner.payment_terms_days
    }
    #[getter]
    fn issued_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.issued_at.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn due_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.due_at.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn paid_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.paid_at.map(|t| from_utc(py, t)).transpose()
    }
    #[getter]
    fn voided_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.voided_at.map(|t| from_utc(py, t)).transpose()
    }
    fn __repr__(&self) -> String {
        format!(
            "Invoice(id={:?}, status={:?}, total=Decimal('{}'), currency={:?})",
            self.inner.id,
            status_name(self.inner.status),
            self.inner.bill.total,
            self.inner.bill.currency
        )
    }
}

/// A quota (units) or budget (money, with a tariff) per period, with alert levels in percent;
/// registered with `Engine.add_quota`, it raises `threshold_crossed` events. Scope: one
/// `subject`, a set of `subjects` or every subject, and a dimension `filter`; `pooled=True`
/// counts the whole scope as one usage (events with an empty subject), else each subject's own.
#[pyclass(module = "meterkit", frozen, name = "Quota")]
#[derive(Clone)]
pub struct PyQuota {
    pub inner: meterkit::quota::Quota,
}

serde_class!(PyQuota, "quota", {
    #[new]
    #[pyo3(signature = (id, tenant, metric, period, time_zone, limit, levels, *, subject=None, tariff=None, subjects=None, filter=None, pooled=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: String,
        tenant: String,
        metric: String,
        period: &str,
        time_zone: String,
        limit: &Bound<'_, PyAny>,
        levels: &Bound<'_, PyAny>,
        subject: Option<String>,
        tariff: Option<&PyTariff>,
        subjects: Option<Vec<String>>,
        filter: Option<std::collections::BTreeMap<String, String>>,
        pooled: bool,
    ) -> PyResult<Self> {
        let limit = to_decimal(limit, "limit")?;
        let levels = levels.try_iter()?.map(|l| to_decimal(&l?, "levels")).collect::<PyResult<Vec<_>>>()?;
        let period = period.parse::<meterkit::Window>().map_err(|e| e.with_field("period")).py()?;
        let mut q = meterkit::quota::Quota::new(id, tenant, metric, period, time_zone, limit, levels);
        q.subject = subject;
        q.tariff = tariff.map(|t| t.inner.clone());
        q.subjects = subjects.unwrap_or_default();
        q.filter = filter.unwrap_or_default();
        q.pooled = pooled;
        q.check().py()?;
        Ok(PyQuota { inner: q })
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    /// The levels (percent) that usage `used` has reached.
    fn levels_reached<'py>(&self, py: Python<'py>, used: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let used = to_decimal(used, "used")?;
        self.inner.levels_reached(used).into_iter().map(|d| from_decimal(py, d)).collect()
    }
    /// `(start, end)` of the quota period containing `at`.
    fn period_of<'py>(
        &self,
        py: Python<'py>,
        at: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (s, e) = self.inner.period_of(utc(at, "at")?).py()?;
        Ok((from_utc(py, s)?, from_utc(py, e)?))
    }
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    #[getter]
    fn tenant(&self) -> &str {
        &self.inner.tenant
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }
    #[getter]
    fn subjects(&self) -> Vec<String> {
        self.inner.subjects.clone()
    }
    #[getter]
    fn filter(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.filter.clone()
    }
    #[getter]
    fn pooled(&self) -> bool {
        self.inner.pooled
    }
    #[getter]
    fn period(&self) -> String {
        self.inner.period.to_string()
    }
    #[getter]
    fn time_zone(&self) -> &str {
        &self.inner.time_zone
    }
    #[getter]
    fn limit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_decimal(py, self.inner.limit)
    }
    #[getter]
    fn levels<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.levels.iter().map(|d| from_decimal(py, *d)).collect()
    }
    #[getter]
    fn tariff(&self) -> Option<PyTariff> {
        self.inner.tariff.clone().map(|t| PyTariff { inner: t })
    }
    fn __repr__(&self) -> String {
        format!(
            "Quota(id={:?}, tenant={:?}, metric={:?}, period={:?}, limit=Decimal('{}'))",
            self.inner.id,
            self.inner.tenant,
            self.inner.metric,
            self.inner.period.to_string(),
            meterkit::decimal::fmt_decimal(self.inner.limit)
        )
    }
});

/// A common meter shared by subjects: `split` turns its usage into one record per subject.
#[pyclass(module = "meterkit", frozen, name = "SharedMeter")]
#[derive(Clone)]
pub struct PySharedMeter {
    pub inner: meterkit::allocate::SharedMeter,
}

serde_class!(PySharedMeter, "shared meter", {
    #[new]
    fn new(meter: String, metric: String, shares: &Bound<'_, PyAny>, scale: u32) -> PyResult<Self> {
        let mut out = Vec::new();
        for s in shares.try_iter()? {
            let (subject, weight): (String, Bound<'_, PyAny>) = s?.extract()?;
            out.push((subject, to_decimal(&weight, "shares")?));
        }
        Ok(PySharedMeter { inner: meterkit::allocate::SharedMeter { meter, metric, shares: out, scale } })
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    /// One usage record per subject with its share of `total` at `at`; the shares sum to `total`.
    fn split(&self, tenant: &str, total: &Bound<'_, PyAny>, at: &Bound<'_, PyAny>) -> PyResult<Vec<PyUsageRecord>> {
        let total = to_decimal(total, "total")?;
        let at = utc(at, "at")?;
        Ok(self.inner.split(tenant, total, at).py()?.into_iter().map(|r| PyUsageRecord { inner: r }).collect())
    }
    #[getter]
    fn meter(&self) -> &str {
        &self.inner.meter
    }
    #[getter]
    fn metric(&self) -> &str {
        &self.inner.metric
    }
    #[getter]
    fn shares<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        self.inner.shares.iter().map(|(s, w)| Ok((s.clone(), from_decimal(py, *w)?))).collect()
    }
    #[getter]
    fn scale(&self) -> u32 {
        self.inner.scale
    }
    fn __repr__(&self) -> String {
        format!(
            "SharedMeter(meter={:?}, metric={:?}, shares={})",
            self.inner.meter,
            self.inner.metric,
            self.inner.shares.len()
        )
    }
});

/// Split `total` across `weights` at `scale` decimal places (largest remainder): the shares sum
/// exactly to `total`.
#[pyfunction]
pub fn allocate<'py>(
    py: Python<'py>,
    total: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    scale: u32,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let total = to_decimal(total, "total")?;
    let weights = weights.try_iter()?.map(|w| to_decimal(&w?, "weights")).collect::<PyResult<Vec<_>>>()?;
    meterkit::allocate::allocate(total, &weights, scale).py()?.into_iter().map(|d| from_decimal(py, d)).collect()
}

/// The instant (an aware UTC `datetime`) a local date `"YYYY-MM-DD"` (its first instant) or local
/// time `"YYYY-MM-DDTHH:MM[:SS]"` names in `time_zone` (the core's `time::local_instant`).
#[pyfunction]
pub fn local_instant<'py>(py: Python<'py>, local: &str, time_zone: &str) -> PyResult<Bound<'py, PyAny>> {
    let tz = meterkit::time::parse_time_zone(time_zone).py()?;
    from_utc(py, meterkit::time::local_instant(local, tz).py()?)
}

/// `(start, end)` of calendar month `yyyy_mm` in `time_zone`.
#[pyfunction]
pub fn month_period<'py>(
    py: Python<'py>,
    yyyy_mm: &str,
    time_zone: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let tz = meterkit::time::parse_time_zone(time_zone).py()?;
    let (s, e) = meterkit::billing::month_period(yyyy_mm, tz).py()?;
    Ok((from_utc(py, s)?, from_utc(py, e)?))
}

/// `(start, end)` of the `window` (`"hour"`, `"day"`, `"minutes:15"`, `"cycle:15"`, …) in
/// `time_zone` that contains `at` (a tz-aware `datetime`). Raises `InvalidWindow` for an unknown
/// window, `InvalidTimeZone`, `ParseError` for a naive `datetime`.
#[pyfunction]
pub fn window_span<'py>(
    py: Python<'py>,
    window: &str,
    at: &Bound<'py, PyAny>,
    time_zone: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let window: meterkit::Window = window.parse().py()?;
    let at = to_utc(at, "at", ErrorKind::Parse)?;
    let tz = meterkit::time::parse_time_zone(time_zone).py()?;
    let (s, e) = window.span(at, tz).py()?;
    Ok((from_utc(py, s)?, from_utc(py, e)?))
}

/// The invoices among `invoices` whose payment reminder is due at `now`.
#[pyfunction]
pub fn reminders_due(
    invoices: Vec<Bound<'_, PyInvoice>>,
    now: &Bound<'_, PyAny>,
    days_before: u32,
) -> PyResult<Vec<PyInvoice>> {
    let now = utc(now, "now")?;
    let inner: Vec<meterkit::invoice::Invoice> = invoices.iter().map(|i| i.get().inner.clone()).collect();
    Ok(meterkit::invoice::reminders_due(&inner, now, days_before)
        .into_iter()
        .map(|i| PyInvoice { inner: i.clone() })
        .collect())
}
