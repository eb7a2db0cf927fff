//! The report's figures as data (`meterkit report --output json`) and as one self-contained HTML
//! page (`meterkit report --html FILE`): daily and monthly usage charts as inline SVG (drawn with
//! plotters' SVG backend; labels are SVG `<text>` laid out by the browser, so no font library is
//! needed), alerts marked on the daily chart, the exact figures in tables, and the bills with their
//! lines. The page loads nothing else: no script, no stylesheet, no font.
//!
//! The charts are pictures (plotted from `f64` copies of the sums); every number on the page is
//! printed from the exact decimals, the same text as the JSON.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use html_escape::encode_text as esc;
use meterkit::{decimal::fmt_decimal, time::fmt_ts, Bucket, Engine, Error, ErrorKind, Query, Result, Window};
use plotters::prelude::*;
use serde::Serialize;

use crate::billing::ReportBillsOutcome;
use crate::input::InputArgs;
use crate::IngestOutcome;

/// Everything the report shows, with exact decimals as strings (JSON: `report --output json`).
#[derive(Debug, Serialize)]
pub struct ReportData {
    /// The input file.
    pub file: String,
    /// The tenant the records were stored under.
    pub tenant: String,
    /// The IANA zone of the days and months.
    pub time_zone: String,
    /// Records stored, already stored, and rejected (malformed lines included).
    pub accepted: u64,
    /// Records already stored with the same content.
    pub duplicates: u64,
    /// Malformed lines plus records the engine rejected.
    pub rejected: u64,
    /// One entry per metric of the input.
    pub metrics: Vec<MetricFigures>,
    /// One bill per `--tariff`, for the billed month.
    pub bills: Vec<BillFigures>,
    /// Why there are no bills (absent when there are, or when no tariff was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bills_skipped: Option<String>,
}

/// The figures of one metric: the total, each local day and month, and the alerts.
#[derive(Debug, Serialize)]
pub struct MetricFigures {
    /// The metric (`kwh`, `bytes`, …).
    pub metric: String,
    /// The subject when the input has exactly one, else `null` (all subjects together).
    pub subject: Option<String>,
    /// The sum of every day, in the metric's unit.
    pub total: String,
    /// Records counted in the total.
    pub count: u64,
    /// Each local month with data: label `YYYY-MM`.
    pub months: Vec<Point>,
    /// Each local day with data: label `YYYY-MM-DD`.
    pub days: Vec<Point>,
    /// Alerts of the default validation rules (consecutive findings on one series merged).
    pub alerts: Vec<meterkit::vee::alert::Alert>,
}

/// One window of a chart: its local label, UTC start, sum (in the metric's unit) and record count.
#[derive(Debug, Serialize)]
pub struct Point {
    /// `YYYY-MM-DD` or `YYYY-MM`, in the report's zone.
    pub label: String,
    /// The window's start, RFC 3339 UTC.
    pub start: String,
    /// The window's sum, exact.
    pub sum: String,
    /// Records in the window.
    pub count: u64,
}

/// One bill of the report.
#[derive(Debug, Serialize)]
pub struct BillFigures {
    /// The tariff's name (or `tariff N` when it has none).
    pub tariff: String,
    /// The bill as `meterkit bill --output json` prints it.
    pub bill: serde_json::Value,
}

fn points(buckets: &[Bucket], tz: meterkit::Tz, fmt: &str) -> Vec<Point> {
    buckets
        .iter()
        .map(|b| Point {
            label: b.window_start.with_timezone(&tz).format(fmt).to_string(),
            start: fmt_ts(b.window_start),
            sum: fmt_decimal(b.sum),
            count: b.count,
        })
        .collect()
}

/// Collect the report's figures from the engine after `outcome`'s ingest.
///
/// # Errors
/// The engine's query and record errors; `InvalidQuery` for an unknown zone.
pub fn gather(
    engine: &Engine,
    tenant: &str,
    input: &InputArgs,
    tz_name: &str,
    outcome: &IngestOutcome,
    bills: &ReportBillsOutcome,
) -> Result<ReportData> {
    let tz = meterkit::time::parse_time_zone(tz_name)?;
    let subject = (outcome.subjects.len() == 1).then(|| outcome.subjects.iter().next().cloned()).flatten();
    let mut metrics = Vec::new();
    for metric in &outcome.metrics {
        let query = |window| {
            let mut q = Query::new(tenant, metric.as_str(), window, tz_name);
            q.subject.clone_from(&subject);
            engine.query(&q)
        };
        let months = query(Window::Month)?;
        let days = query(Window::Day)?;
        let total = days.iter().try_fold(meterkit::Decimal::ZERO, |a, d| a.checked_add(d.sum)).ok_or_else(|| {
            Error::new(ErrorKind::Overflow, format!("The total of {metric} overflows a decimal."))
                .with_field("quantity")
        })?;
        let alerts = match (days.first(), days.last()) {
            (Some(first), Some(last)) => {
                let records =
                    engine.records(tenant, metric, subject.as_deref(), first.window_start, last.window_end)?;
                crate::validation::report_alerts(&records)?.0
            }
            _ => Vec::new(),
        };
        metrics.push(MetricFigures {
            metric: metric.clone(),
            subject: subject.clone(),
            total: fmt_decimal(total),
            count: days.iter().map(|d| d.count).sum(),
            months: points(&months, tz, "%Y-%m"),
            days: points(&days, tz, "%Y-%m-%d"),
            alerts,
        });
    }
    let (bills, bills_skipped) = match bills {
        ReportBillsOutcome::Bills(b, _) => (
            b.iter()
                .enumerate()
                .map(|(i, (t, bill))| {
                    Ok(BillFigures {
                        tariff: t.name.clone().unwrap_or_else(|| format!("tariff {}", i + 1)),
                        bill: serde_json::to_value(bill).map_err(|e| Error::new(ErrorKind::Store, e.to_string()))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            None,
        ),
        ReportBillsOutcome::Skipped(why) => (Vec::new(), (!why.is_empty()).then(|| why.clone())),
    };
    Ok(ReportData {
        file: input.file.display().to_string(),
        tenant: tenant.to_string(),
        time_zone: tz_name.to_string(),
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected: outcome.rejected,
        metrics,
        bills,
        bills_skipped,
    })
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#1f2937}\
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #e5e7eb}table{border-collapse:collapse;margin:.5em 0}\
td,th{padding:.2em .7em;border-bottom:1px solid #e5e7eb}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1em 0}figcaption{color:#6b7280}.alert{color:#b91c1c}tr.total td{font-weight:600}";

/// The colour of alert bands on the daily chart (a test finds the bands by it).
const ALERT: RGBColor = RGBColor(220, 38, 38);

fn to_f64(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

fn chart_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Store, format!("Cannot draw the chart: {e}."))
}

/// The monthly bar chart as an SVG element.
fn month_chart(m: &MetricFigures) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let n = u32::try_from(m.months.len()).unwrap_or(u32::MAX).max(1);
        let top = m.months.iter().map(|p| to_f64(&p.sum)).fold(0.0, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
            .map_err(chart_err)?;
        let labels: Vec<&str> = m.months.iter().map(|p| p.label.as_str()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len().min(24))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).map_or_else(String::new, |s| (*s).to_string()),
                _ => String::new(),
            })
            .y_desc(m.metric.as_str())
            .draw()
            .map_err(chart_err)?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RGBColor(37, 99, 235).filled())
                    .margin(4)
                    .data(m.months.iter().enumerate().map(|(i, p)| (u32::try_from(i).unwrap_or(0), to_f64(&p.sum)))),
            )
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// The daily line chart as an SVG element, each alert a translucent red band over its days.
fn day_chart(m: &MetricFigures) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let start = |p: &Point| meterkit::time::parse_ts(&p.start);
        let (Some(first), Some(last)) = (m.days.first(), m.days.last()) else { return Ok(String::new()) };
        let (x0, x1) = (start(first)?, start(last)? + chrono::Duration::days(1));
        let top = m.days.iter().map(|p| to_f64(&p.sum)).fold(0.0, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..top)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|t: &DateTime<Utc>| t.format("%Y-%m-%d").to_string())
            .y_desc(m.metric.as_str())
            .draw()
            .map_err(chart_err)?;
        let bands = m.alerts.iter().map(|a| {
            let end = a.end.max(a.start + chrono::Duration::hours(12));
            Rectangle::new([(a.start, 0.0), (end, top)], ALERT.mix(0.25).filled())
        });
        chart.draw_series(bands).map_err(chart_err)?;
        let line = m.days.iter().filter_map(|p| Some((start(p).ok()?, to_f64(&p.sum))));
        chart.draw_series(LineSeries::new(line, RGBColor(37, 99, 235).stroke_width(2))).map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

fn rows(points: &[Point], class: &str) -> String {
    let mut out = String::new();
    for p in points {
        let _ = write!(
            out,
            "<tr data-{class}=\"{l}\"><td>{l}</td><td class=\"num sum\">{s}</td><td class=\"num\">{c}</td></tr>",
            l = esc(&p.label),
            s = p.sum,
            c = p.count
        );
    }
    out
}

/// A serde enum's name (`"spike"`, `"warning"`).
fn name_of(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn metric_section(m: &MetricFigures, tz: &str) -> Result<String> {
    let scope = m.subject.as_deref().map_or_else(|| "all subjects".to_string(), |s| format!("subject {s}"));
    let mut alerts = String::new();
    for a in &m.alerts {
        let rules: Vec<String> = a.rules.iter().map(name_of).collect();
        let _ = write!(
            alerts,
            "<tr class=\"alert\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.subject),
            fmt_ts(a.start),
            fmt_ts(a.end),
            esc(&rules.join(", ")),
            name_of(&a.severity)
        );
    }
    let metric = esc(&m.metric);
    Ok(format!(
        "<section class=\"metric\" data-metric=\"{metric}\"><h2>{metric} · {scope}</h2>\
<p>Total <span class=\"total\" data-metric=\"{metric}\">{total}</span> {metric} in {records} records, \
{days} days with data (days and months in {tz}); {na} alerts.</p>\
<figure class=\"months\"><figcaption>Monthly {metric}</figcaption>{mc}</figure>\
<table class=\"months\"><tr><th>month</th><th class=\"num\">{metric}</th><th class=\"num\">records</th></tr>{mr}</table>\
<figure class=\"days\"><figcaption>Daily {metric}; alerts shaded red</figcaption>{dc}</figure>\
<table class=\"alerts\"><tr><th>subject</th><th>start</th><th>end</th><th>rules</th><th>severity</th></tr>{alerts}</table>\
<details><summary>Every day</summary><table class=\"days\"><tr><th>day</th><th class=\"num\">{metric}</th>\
<th class=\"num\">records</th></tr>{dr}</table></details></section>",
        total = m.total,
        records = m.count,
        days = m.days.len(),
        na = m.alerts.len(),
        mc = month_chart(m)?,
        mr = rows(&m.months, "month"),
        dc = day_chart(m)?,
        dr = rows(&m.days, "day"),
    ))
}

fn bill_section(b: &BillFigures) -> String {
    let text = |k: &str| b.bill.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    let mut lines = String::new();
    for l in b.bill["lines"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let f = |k: &str| esc(l.get(k).and_then(serde_json::Value::as_str).unwrap_or_default()).to_string();
        let _ = write!(
            lines,
            "<tr class=\"line\"><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num amount\">{}</td></tr>",
            f("description"),
            f("quantity"),
            f("unit"),
            f("rate"),
            f("amount")
        );
    }
    format!(
        "<table class=\"bill\" data-tariff=\"{name}\"><caption>{name} · {subject} · {start} to {end} ({cur})</caption>\
<tr><th>line</th><th class=\"num\">quantity</th><th>unit</th><th class=\"num\">rate</th><th class=\"num\">amount</th></tr>{lines}\
<tr><td colspan=\"4\">subtotal</td><td class=\"num subtotal\">{sub}</td></tr>\
<tr><td colspan=\"4\">taxes</td><td class=\"num taxes\">{tax}</td></tr>\
<tr class=\"total\"><td colspan=\"4\">total</td><td class=\"num bill-total\">{total}</td></tr></table>",
        name = esc(&b.tariff),
        subject = esc(&text("subject")),
        start = text("period_start"),
        end = text("period_end"),
        cur = esc(&text("currency")),
        sub = text("subtotal"),
        tax = text("taxes"),
        total = text("total"),
    )
}

/// The page: a heading, one section per metric, the bills.
///
/// # Errors
/// `Store` when a chart cannot be drawn.
pub fn page(data: &ReportData) -> Result<String> {
    let mut body = String::new();
    for m in &data.metrics {
        body.push_str(&metric_section(m, &data.time_zone)?);
    }
    body.push_str("<section class=\"bills\"><h2>Bills</h2>");
    if let Some(why) = &data.bills_skipped {
        let _ = write!(body, "<p>Bills skipped: {}.</p>", esc(why));
    }
    for b in &data.bills {
        body.push_str(&bill_section(b));
    }
    body.push_str("</section>");
    Ok(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>meterkit report: {file}</title>\
<style>{STYLE}</style></head><body><h1>meterkit report: {file}</h1>\
<p>Tenant {tenant}: <span class=\"accepted\">{a}</span> records accepted, {d} duplicates, {r} rejected.</p>{body}</body></html>\n",
        file = esc(&data.file),
        tenant = esc(&data.tenant),
        a = data.accepted,
        d = data.duplicates,
        r = data.rejected,
    ))
}

/// Write the page to `path`.
///
/// # Errors
/// `Store` naming the file when it cannot be written; chart errors as [`page`].
pub fn write(path: &Path, data: &ReportData) -> Result<()> {
    std::fs::write(path, page(data)?)
        .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write {}: {e}.", path.display())).with_field("html"))
}
