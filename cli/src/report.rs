//! The main job's readable summary.

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use meterkit::{decimal::fmt_decimal, Bucket, Decimal, Engine, Query, Result, Window};

use crate::input::InputArgs;
use crate::IngestOutcome;

/// Decimal places shown in report tables (stored values stay exact).
const SHOWN_DP: u32 = 3;

fn shown(d: Decimal) -> String {
    fmt_decimal(d.round_dp(SHOWN_DP))
}

fn local(b: &Bucket, tz: meterkit::Tz, fmt: &str) -> String {
    b.window_start.with_timezone(&tz).format(fmt).to_string()
}

/// Render the report for what `outcome` ingested from `input`.
pub fn render(
    engine: &Engine,
    tenant: &str,
    input: &InputArgs,
    tz_name: &str,
    outcome: &IngestOutcome,
) -> Result<String> {
    let tz = meterkit::time::parse_time_zone(tz_name)?;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "meterkit report: {} (tenant {tenant})", input.file.display());
    let _ = writeln!(
        w,
        "Records: {} accepted, {} duplicates, {} rejected",
        outcome.accepted, outcome.duplicates, outcome.rejected
    );
    let subject = (outcome.subjects.len() == 1).then(|| outcome.subjects.iter().next().cloned()).flatten();
    for metric in &outcome.metrics {
        let scope =
            subject.as_ref().map_or_else(|| format!("{} subjects", outcome.subjects.len()), |s| format!("subject {s}"));
        let _ = writeln!(w, "\n{metric} · {scope} · days and months in {tz_name} (shown to {SHOWN_DP} decimals)");
        let query = |window| {
            let mut q = Query::new(tenant, metric.as_str(), window, tz_name);
            q.subject.clone_from(&subject);
            engine.query(&q)
        };
        let months = query(Window::Month)?;
        let days = query(Window::Day)?;
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED).set_header([
            "month",
            metric.as_str(),
            "records",
            "days with data",
            "per day",
        ]);
        for m in &months {
            let in_month: Vec<&Bucket> =
                days.iter().filter(|d| d.window_start >= m.window_start && d.window_start < m.window_end).collect();
            let per_day = if in_month.is_empty() { Decimal::ZERO } else { m.sum / Decimal::from(in_month.len()) };
            t.add_row([
                local(m, tz, "%Y-%m"),
                shown(m.sum),
                m.count.to_string(),
                in_month.len().to_string(),
                shown(per_day),
            ]);
        }
        for col in 1..5 {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        let _ = writeln!(w, "Monthly totals\n{t}");
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            let total: Decimal = days.iter().map(|d| d.sum).sum();
            let peak = days.iter().max_by(|a, b| a.sum.cmp(&b.sum).then(b.window_start.cmp(&a.window_start)));
            let low = days.iter().min_by(|a, b| a.sum.cmp(&b.sum).then(a.window_start.cmp(&b.window_start)));
            let _ = writeln!(
                w,
                "Daily totals: {} days with data from {} to {}; total {} {metric}; mean {} {metric}/day",
                days.len(),
                local(first, tz, "%Y-%m-%d"),
                local(last, tz, "%Y-%m-%d"),
                shown(total),
                shown(total / Decimal::from(days.len())),
            );
            if let (Some(peak), Some(low)) = (peak, low) {
                let hours = (peak.window_end - peak.window_start).num_minutes() as f64 / 60.0;
                let _ = writeln!(
                    w,
                    "Peak day: {} with {} {metric} ({} records, a {hours}-hour day); lowest day: {} with {} {metric}",
                    local(peak, tz, "%Y-%m-%d (%a)"),
                    shown(peak.sum),
                    peak.count,
                    local(low, tz, "%Y-%m-%d"),
                    shown(low.sum),
                );
            }
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED).set_header(["day", metric.as_str(), "records", "max in one record"]);
            for d in days.iter().rev().take(7).rev() {
                t.add_row([
                    local(d, tz, "%Y-%m-%d (%a)"),
                    shown(d.sum),
                    d.count.to_string(),
                    d.max.map(shown).unwrap_or_default(),
                ]);
            }
            let _ = writeln!(w, "Last 7 days\n{t}");
            let records = engine.records(tenant, metric, subject.as_deref(), first.window_start, last.window_end)?;
            w.push_str(&crate::validation::render_summary(&records)?);
        }
    }
    Ok(s)
}
