//! Reading usage records from files: CSV, JSON lines, and Apache/NGINX access logs.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use meterkit::Tz;
use meterkit::{decimal::parse_decimal, record::Dimensions, Error, ErrorKind, Result, UsageRecord};

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON usage record per line.
    Jsonl,
    /// Apache/NGINX Common or Combined Log Format.
    Clf,
}

/// The flags that say how to read an input file (shared by ingest, report and validate).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// The input file.
    pub file: PathBuf,
    /// Input format; by default from the extension (.csv, .jsonl/.ndjson/.json, .log).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV: the column holding the timestamp (RFC 3339, or local time with --assume-tz).
    #[arg(long)]
    pub timestamp_column: Option<String>,
    /// CSV: the column holding the quantity (a decimal number).
    #[arg(long)]
    pub quantity_column: Option<String>,
    /// CSV: the subject of every row.
    #[arg(long, conflicts_with = "subject_column")]
    pub subject: Option<String>,
    /// CSV: the column holding the subject.
    #[arg(long)]
    pub subject_column: Option<String>,
    /// CSV: the metric of every row (kwh, bytes, requests, …).
    #[arg(long)]
    pub metric: Option<String>,
    /// CSV: the column holding the record id; without it the id is derived from the subject,
    /// metric, timestamp and the --dimension-columns values
    /// (`subject/metric/timestamp;dim=value;…`).
    #[arg(long)]
    pub id_column: Option<String>,
    /// CSV: columns to keep as dimensions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub dimension_columns: Vec<String>,
    /// The IANA zone of timestamps written without a UTC offset.
    #[arg(long)]
    pub assume_tz: Option<String>,
    /// Check the whole file first — every line parsed, every record checked (non-empty fields,
    /// years 1678-2261, end not before start), no id repeated with other content — and store
    /// nothing unless all of it passes; the first failure is reported as `file:line: reason`.
    #[arg(long)]
    pub strict: bool,
    /// JSONL: keep each record's own `tenant` (set by `ingest --all-tenants`); otherwise a record
    /// of another tenant than --tenant is refused.
    #[arg(skip)]
    pub all_tenants: bool,
}

/// One input line's outcome: its records, or why it is malformed.
pub type LineResult = std::result::Result<Vec<UsageRecord>, Error>;

/// Lines per chunk handed from the reader thread to the consumer ([`InputArgs::read_pipelined`]).
pub const PIPE_CHUNK: usize = 4096;

/// Chunks the reader thread may be ahead of the consumer.
pub const PIPE_DEPTH: usize = 4;

impl InputArgs {
    /// The format given or inferred from the extension.
    pub fn format(&self) -> Result<Format> {
        if let Some(f) = self.format {
            return Ok(f);
        }
        let ext = self.file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "log" => Ok(Format::Clf),
            _ => Err(Error::new(
                ErrorKind::Parse,
                format!("Cannot tell the format of {}; pass --format csv|jsonl|clf.", self.file.display()),
            )
            .with_field("format")),
        }
    }

    /// Read the file, calling `f(line, outcome)` for every data line in order. A progress bar is
    /// drawn on stderr (when it is a terminal) for files over 256 KiB.
    pub fn read(&self, tenant: &str, f: &mut dyn FnMut(u64, LineResult) -> Result<()>) -> Result<()> {
        self.with_reader(|reader| self.read_from(reader, tenant, f))
    }

    /// Call `read` with the file's bytes, buffered, behind a progress bar drawn on stderr (when
    /// it is a terminal) for files over 256 KiB.
    fn with_reader(&self, read: impl FnOnce(&mut dyn BufRead) -> Result<()>) -> Result<()> {
        let file = File::open(&self.file).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("Cannot open {}: {e}.", self.file.display())).with_field("file")
        })?;
        let len = file.metadata().map_or(0, |m| m.len());
        let bar = if len > 256 * 1024 {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let result = read(&mut BufReader::new(bar.wrap_read(file)));
        bar.finish_and_clear();
        result
    }

    /// [`InputArgs::read`] with the reading and parsing in a thread of its own, so that it
    /// overlaps with what `f` does (the ingest of the previous batch): lines are handed over in
    /// chunks of [`PIPE_CHUNK`], at most [`PIPE_DEPTH`] chunks ahead (memory stays bounded).
    /// `f` sees the same calls in the same order as with [`InputArgs::read`]; when `f` fails the
    /// reader stops at its next chunk and `f`'s error is returned.
    pub fn read_pipelined(&self, tenant: &str, f: &mut dyn FnMut(u64, LineResult) -> Result<()>) -> Result<()> {
        let produce = |send: &mut dyn FnMut(Vec<(u64, LineResult)>) -> Result<()>| {
            let mut chunk = Vec::with_capacity(PIPE_CHUNK);
            self.read(tenant, &mut |line, parsed| {
                chunk.push((line, parsed));
                if chunk.len() == PIPE_CHUNK {
                    send(std::mem::replace(&mut chunk, Vec::with_capacity(PIPE_CHUNK)))?;
                }
                Ok(())
            })?;
            if chunk.is_empty() {
                Ok(())
            } else {
                send(chunk)
            }
        };
        pipe(produce, &mut |chunk| chunk.into_iter().try_for_each(|(line, parsed)| f(line, parsed)))
    }

    /// The lines of a text file (JSON lines), unparsed, in chunks of `size` lines (at least one)
    /// read in a thread of their own, at most [`PIPE_DEPTH`] chunks ahead: for a reader that
    /// looks at a chunk as a whole before parsing its lines one by one (`meterkit ingest`'s
    /// repeat runs). Lines are numbered and skipped as [`InputArgs::read`] does.
    pub fn read_line_chunks(&self, size: usize, f: &mut dyn FnMut(LineChunk) -> Result<()>) -> Result<()> {
        let produce = |send: &mut dyn FnMut(LineChunk) -> Result<()>| {
            let mut chunk = LineChunk::default();
            self.with_reader(|reader| {
                read_lines(reader, &mut |line, text| {
                    chunk.push(line, text);
                    if chunk.lines.len() >= size {
                        send(std::mem::take(&mut chunk))?;
                    }
                    Ok(())
                })
            })?;
            if chunk.lines.is_empty() {
                Ok(())
            } else {
                send(chunk)
            }
        };
        pipe(produce, f)
    }

    /// [`InputArgs::read`] from any reader (the file's bytes).
    pub fn read_from(
        &self,
        mut reader: impl BufRead,
        tenant: &str,
        f: &mut dyn FnMut(u64, LineResult) -> Result<()>,
    ) -> Result<()> {
        let assume_tz = self.assume_tz.as_deref().map(meterkit::time::parse_time_zone).transpose()?;
        match self.format()? {
            Format::Csv => self.read_csv(reader, tenant, assume_tz, f),
            Format::Jsonl => read_lines(&mut reader, &mut |line, text| {
                f(line, text.and_then(|text| parse_jsonl(text, tenant, self.all_tenants)))
            }),
            Format::Clf => {
                // Occurrences of each distinct line so far: the n-th copy of a line gets id `…-n`.
                let mut seen: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
                read_lines(&mut reader, &mut |line, text| {
                    let parsed = text.and_then(|text| {
                        let hash = fnv1a(text.as_bytes());
                        let n = seen.entry(hash).or_insert(0);
                        *n += 1;
                        parse_clf(text, *n, tenant)
                    });
                    f(line, parsed)
                })
            }
        }
    }

    fn read_csv(
        &self,
        reader: impl Read,
        tenant: &str,
        assume_tz: Option<Tz>,
        f: &mut dyn FnMut(u64, LineResult) -> Result<()>,
    ) -> Result<()> {
        let need = |v: &Option<String>, flag: &str| {
            v.clone().ok_or_else(|| {
                Error::new(ErrorKind::Parse, format!("CSV input needs --{flag}.")).with_field(flag.to_string())
            })
        };
        let ts_col = need(&self.timestamp_column, "timestamp-column")?;
        let q_col = need(&self.quantity_column, "quantity-column")?;
        let metric = need(&self.metric, "metric")?;
        if self.subject.is_none() && self.subject_column.is_none() {
            return Err(
                Error::new(ErrorKind::Parse, "CSV input needs --subject or --subject-column.").with_field("subject")
            );
        }
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|e| {
                Error::new(ErrorKind::Parse, format!("{}: cannot read the header: {e}.", self.file.display()))
            })?
            .clone();
        let col = |name: &str| {
            headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
                Error::new(
                    ErrorKind::Parse,
                    format!(
                        "{}: there is no column '{name}' (columns: {}).",
                        self.file.display(),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
                .with_field(name.to_string())
            })
        };
        let ts_i = col(&ts_col)?;
        let q_i = col(&q_col)?;
        let subject_i = self.subject_column.as_deref().map(col).transpose()?;
        let id_i = self.id_column.as_deref().map(col).transpose()?;
        let dim_i: Vec<(String, usize)> =
            self.dimension_columns.iter().map(|d| Ok((d.clone(), col(d)?))).collect::<Result<_>>()?;
        let mut row = csv::StringRecord::new();
        loop {
            // The reader is at the start of the next record (after the header: line 2).
            let line = rdr.position().line();
            match rdr.read_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, csv::Position::line);
                    f(line, Err(Error::new(ErrorKind::Parse, format!("malformed CSV: {e}")).with_line(line)))?;
                    continue;
                }
            }
            let line = row.position().map_or(line, csv::Position::line);
            let cell = |i: usize, name: &str| {
                row.get(i).map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::new(ErrorKind::Parse, format!("the '{name}' cell is empty")).with_field(name.to_string())
                })
            };
            let parsed = (|| -> Result<Vec<UsageRecord>> {
                let timestamp = parse_timestamp(cell(ts_i, &ts_col)?, assume_tz)
                    .map_err(|e| Error::new(ErrorKind::Parse, e.message().to_string()).with_field(ts_col.clone()))?;
                let quantity = parse_decimal(cell(q_i, &q_col)?)
                    .map_err(|e| Error::new(ErrorKind::Parse, e.message().to_string()).with_field(q_col.clone()))?;
                let subject = match (subject_i, &self.subject) {
                    (Some(i), _) => cell(i, self.subject_column.as_deref().unwrap_or("subject"))?.to_string(),
                    (None, Some(s)) => s.clone(),
                    (None, None) => {
                        return Err(Error::new(ErrorKind::Parse, "no subject").with_field("subject"));
                    }
                };
                let mut dimensions = Dimensions::new();
                for (name, i) in &dim_i {
                    if let Some(v) = row.get(*i).map(str::trim).filter(|s| !s.is_empty()) {
                        dimensions.insert(name.clone(), v.to_string());
                    }
                }
                let id = match id_i {
                    Some(i) => cell(i, self.id_column.as_deref().unwrap_or("id"))?.to_string(),
                    None => derived_csv_id(&subject, &metric, timestamp, &dimensions),
                };
                Ok(vec![UsageRecord {
                    id,
                    tenant: tenant.to_string(),
                    subject,
                    metric: metric.clone(),
                    quantity,
                    timestamp,
                    end: None,
                    quality: meterkit::record::Quality::Actual,
                    dimensions,
                }])
            })();
            f(line, parsed.map_err(|e| e.with_line(line)))?;
        }
        Ok(())
    }
}

/// The id of a CSV row without an id column: `subject/metric/timestamp`, then `;name=value` for
/// each dimension (sorted by name), so rows that differ only in a dimension (two carriers at the
/// same instant) are different records.
fn derived_csv_id(subject: &str, metric: &str, timestamp: DateTime<Utc>, dimensions: &Dimensions) -> String {
    let mut id = format!("{subject}/{metric}/{}", meterkit::time::fmt_ts(timestamp));
    for (k, v) in dimensions {
        let _ = write!(id, ";{k}={v}");
    }
    id
}

/// One line's text, or why it cannot be read as text.
pub type LineText<'a> = std::result::Result<&'a str, Error>;

/// Consecutive lines of a text file: each line's number and text, or why it cannot be read as
/// text ([`InputArgs::read_line_chunks`]).
#[derive(Debug, Default)]
pub struct LineChunk {
    text: String,
    lines: Vec<(u64, std::result::Result<std::ops::Range<usize>, Error>)>,
}

impl LineChunk {
    fn push(&mut self, line: u64, text: LineText<'_>) {
        let place = text.map(|t| {
            self.text.push_str(t);
            self.text.len() - t.len()..self.text.len()
        });
        self.lines.push((line, place));
    }

    /// The lines in order: number and text, or why it cannot be read as text.
    pub fn lines(&self) -> impl Iterator<Item = (u64, std::result::Result<&str, &Error>)> {
        self.lines.iter().map(|(line, place)| (*line, place.as_ref().map(|r| &self.text[r.clone()])))
    }

    /// Call `f(line, text)` for every line in order, as [`InputArgs::read_line_chunks`]'s
    /// reader saw it.
    pub fn for_each(self, f: &mut dyn FnMut(u64, LineText<'_>) -> Result<()>) -> Result<()> {
        let LineChunk { text, lines } = self;
        lines.into_iter().try_for_each(|(line, place)| f(line, place.map(|r| &text[r])))
    }
}

/// Run `produce` in a thread of its own, handing what it makes to `consume` in order, at most
/// [`PIPE_DEPTH`] items ahead (memory stays bounded). When `consume` fails, `produce`'s next
/// hand-over fails and `consume`'s error is returned.
fn pipe<T: Send>(
    produce: impl FnOnce(&mut dyn FnMut(T) -> Result<()>) -> Result<()> + Send,
    consume: &mut dyn FnMut(T) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(PIPE_DEPTH);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            produce(&mut |item| tx.send(item).map_err(|_| Error::new(ErrorKind::Parse, "the consumer stopped")))
        });
        let consumed = rx.iter().try_for_each(&mut *consume);
        drop(rx); // a reader still sending stops at its next hand-over
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Parse, "The input reader failed unexpectedly.")));
        consumed.and(read)
    })
}

/// Call `f(line, text)` for every non-blank line (1-based numbers; `\n` or `\r\n` endings; a
/// UTF-8 byte-order mark at the start of the file is skipped). A line that is not valid UTF-8
/// is passed as an error naming the byte — never decoded lossily, which would merge different
/// names (`Müller` and `Mýller` in Latin-1 both become `M�ller`).
fn read_lines(reader: &mut dyn BufRead, f: &mut dyn FnMut(u64, LineText<'_>) -> Result<()>) -> Result<()> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("Cannot read line {}: {e}.", line + 1)))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let bytes = if line == 1 { buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf) } else { &buf[..] };
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let text = text.trim_end_matches(['\n', '\r']);
                if !text.trim().is_empty() {
                    f(line, Ok(text))?;
                }
            }
            Err(e) => f(
                line,
                Err(Error::new(
                    ErrorKind::Parse,
                    format!("the line is not valid UTF-8 (byte {} of the line)", e.valid_up_to() + 1),
                )
                .with_line(line)),
            )?,
        }
    }
}

/// Parse a timestamp: RFC 3339 (`T` or a space between date and time), or — only with
/// `assume_tz` — a local date-time or date without an offset. A local time that is skipped or
/// repeated by a DST change is an error: the offset is needed to know which instant it is.
pub fn parse_timestamp(text: &str, assume_tz: Option<Tz>) -> Result<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Ok(d.with_timezone(&Utc));
        }
    }
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(t, fmt).ok())
        .or_else(|| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)));
    let Some(naive) = naive else {
        return Err(Error::new(ErrorKind::Parse, format!("'{t}' is not a timestamp (RFC 3339 expected)")));
    };
    let Some(tz) = assume_tz else {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("'{t}' has no UTC offset; pass --assume-tz ZONE to say which zone it is in"),
        ));
    };
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(d) => Ok(d.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(..) => Err(Error::new(
            ErrorKind::Parse,
            format!("'{t}' occurs twice in {tz} (a DST change); write it with its UTC offset"),
        )),
        chrono::LocalResult::None => {
            Err(Error::new(ErrorKind::Parse, format!("'{t}' does not exist in {tz} (skipped by a DST change)")))
        }
    }
}

/// One JSON usage record. Repeated keys are refused (see [`meterkit::json::check_json`]); a number
/// quantity is read exactly from its text. A record without `tenant` gets `tenant`; one with
/// another tenant is refused unless `all_tenants`.
pub fn parse_jsonl(text: &str, tenant: &str, all_tenants: bool) -> LineResult {
    // The hot path: a record object with its tenant, read in one pass by the core's reader
    // (exactly what the careful way below reads, when it reads anything). Anything else —
    // no tenant, another one, an error — goes the careful way for its message.
    if text.trim_start().starts_with('{') {
        if let Some(records) = meterkit::record::read_records_fast(text) {
            if records.iter().all(|r| r.tenant == tenant || all_tenants) {
                return Ok(records);
            }
        }
    }
    meterkit::json::check_json(text).map_err(|e| Error::new(ErrorKind::Parse, e.message().to_string()))?;
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::new(ErrorKind::Parse, format!("invalid JSON: {e}")))?;
    if let Some(obj) = value.as_object_mut() {
        match obj.get("tenant") {
            None | Some(serde_json::Value::Null) => {
                obj.insert("tenant".into(), tenant.into());
            }
            Some(serde_json::Value::String(t)) if t == tenant || all_tenants => {}
            Some(serde_json::Value::String(t)) => {
                return Err(Error::new(
                    ErrorKind::InvalidRecord,
                    format!(
                        "the record's tenant '{t}' is not the tenant '{tenant}' of this command: pass --tenant {t}, \
                         or ingest --all-tenants to keep each record's own tenant"
                    ),
                )
                .with_field("tenant"))
            }
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::InvalidRecord,
                    format!("the record's tenant {other} is not a string"),
                )
                .with_field("tenant"))
            }
        }
    }
    let record: UsageRecord =
        serde_json::from_value(value).map_err(|e| Error::new(ErrorKind::Parse, format!("not a usage record: {e}")))?;
    Ok(vec![record])
}

/// FNV-1a, 64 bits: a stable hash for ids derived from content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// One Common/Combined Log Format line → a `requests` record (1) and a `bytes` record.
///
/// The ids come from the line's content and `occurrence`, its number among the identical lines
/// of the file so far (`clf-<hash>-<occurrence>/requests`): the same lines ingested again — a
/// rotated or concatenated log — are duplicates, while two identical requests in one file (the
/// same client, second and request) still count twice.
fn parse_clf(text: &str, occurrence: u64, tenant: &str) -> LineResult {
    let bad = |what: &str| Error::new(ErrorKind::Parse, format!("not a Common Log Format line: {what}"));
    let (host, rest) = text.split_once(' ').ok_or_else(|| bad("no client address"))?;
    let open = rest.find('[').ok_or_else(|| bad("no [time]"))?;
    let close = rest[open..].find(']').ok_or_else(|| bad("no closing ]"))? + open;
    let time = &rest[open + 1..close];
    let timestamp = DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z")
        .map_err(|e| bad(&format!("bad time '{time}' ({e})")))?
        .with_timezone(&Utc);
    let rest = rest[close + 1..].trim_start();
    let rest = rest.strip_prefix('"').ok_or_else(|| bad("no quoted request"))?;
    let end_quote = find_closing_quote(rest).ok_or_else(|| bad("unterminated request"))?;
    let request = &rest[..end_quote];
    let mut fields = rest[end_quote + 1..].split_whitespace();
    let status = fields.next().ok_or_else(|| bad("no status"))?;
    let size = fields.next().ok_or_else(|| bad("no size"))?;
    if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&format!("bad status '{status}'")));
    }
    let bytes = if size == "-" {
        meterkit::Decimal::ZERO
    } else {
        size.parse::<u64>().map(meterkit::Decimal::from).map_err(|_| bad(&format!("bad size '{size}'")))?
    };
    let method = request.split_whitespace().next().filter(|m| m.bytes().all(|b| b.is_ascii_uppercase())).unwrap_or("-");
    let base = format!("clf-{:016x}-{occurrence}", fnv1a(text.as_bytes()));
    let dims: Dimensions =
        [("method".to_string(), method.to_string()), ("status_class".to_string(), format!("{}xx", &status[..1]))]
            .into_iter()
            .collect();
    let make = |metric: &str, quantity| UsageRecord {
        id: format!("{base}/{metric}"),
        tenant: tenant.to_string(),
        subject: host.to_string(),
        metric: metric.to_string(),
        quantity,
        timestamp,
        end: None,
        quality: meterkit::record::Quality::Actual,
        dimensions: dims.clone(),
    };
    Ok(vec![make("requests", meterkit::Decimal::ONE), make("bytes", bytes)])
}

/// Index of the closing `"` of a quoted log field (backslash escapes skipped).
fn find_closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// `file:line: reason`, the one format for input errors on stderr.
pub fn located(file: &Path, line: u64, reason: &str) -> String {
    format!("{}:{line}: {reason}", file.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSONL line read by the fast path gives what the careful way (`check_json`, then serde
    /// through a `Value`) gives; lines the fast path leaves alone keep their errors.
    #[test]
    fn jsonl_fast_path_reads_what_the_careful_way_reads() {
        let careful = |text: &str| -> Option<Vec<UsageRecord>> {
            meterkit::json::check_json(text).ok()?;
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            Some(vec![serde_json::from_value(value).ok()?])
        };
        let lines = [
            r#"{"id":"r1","tenant":"t","subject":"s","metric":"kwh","quantity":"1.50","timestamp":"2024-03-01T10:00:00Z"}"#,
            r#"{"id":"r2","tenant":"t","subject":"s","metric":"kwh","quantity":12345678901234567890.5,"timestamp":"2024-03-01T10:00:00+01:00","end":null,"dimensions":{"b":"1","a":"2"},"quality":"flagged"}"#,
            r#"{"id":"r3","tenant":"t","subject":"s","metric":"kwh","quantity":1e3,"timestamp":"2024-03-01T10:00:00Z"}"#,
        ];
        for line in lines {
            assert_eq!(parse_jsonl(line, "t", false).ok(), careful(line), "{line}");
        }
        let no_tenant = r#"{"id":"r1","subject":"s","metric":"kwh","quantity":"1","timestamp":"2024-03-01T10:00:00Z"}"#;
        assert_eq!(parse_jsonl(no_tenant, "t", false).unwrap()[0].tenant, "t");
        let other = lines[0].replace(r#""tenant":"t""#, r#""tenant":"u""#);
        assert_eq!(parse_jsonl(&other, "t", false).unwrap_err().field(), Some("tenant"));
        assert_eq!(parse_jsonl(&other, "t", true).unwrap()[0].tenant, "u");
        // A line's content borrowed from it (`meterkit ingest`'s repeat runs) is that of its
        // record, also with the command's tenant filled in.
        for line in lines.iter().copied().chain([no_tenant]) {
            let mut refs = meterkit::record::RefBatch::default();
            assert!(refs.push_object(line, "t"), "{line}");
            assert!(refs.refs()[0].same_content(&parse_jsonl(line, "t", false).unwrap()[0]), "{line}");
        }
        let array = format!("[{}]", lines[0]);
        assert_eq!(parse_jsonl(&array, "t", false).unwrap_err().kind(), ErrorKind::Parse);
        let repeated = lines[0].replace(r#""id":"r1","#, r#""id":"r1","id":"r9","#);
        assert_eq!(parse_jsonl(&repeated, "t", false).unwrap_err().kind(), ErrorKind::Parse);
    }

    #[test]
    fn clf_line_gives_requests_and_bytes() {
        let line =
            r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /a.png HTTP/1.1" 200 203023 "http://x/" "Mozilla""#;
        let recs = parse_clf(line, 7, "t").unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].metric, "requests");
        assert_eq!(recs[1].quantity.to_string(), "203023");
        assert_eq!(recs[1].dimensions["status_class"], "2xx");
        assert_eq!(recs[1].dimensions["method"], "GET");
        assert_eq!(meterkit::time::fmt_ts(recs[0].timestamp), "2015-05-17T10:05:03Z");
        let dash = r#"1.2.3.4 - - [17/May/2015:10:05:03 +0200] "HEAD / HTTP/1.0" 304 -"#;
        let recs = parse_clf(dash, 8, "t").unwrap();
        assert!(recs[1].quantity.is_zero());
        assert_eq!(meterkit::time::fmt_ts(recs[0].timestamp), "2015-05-17T08:05:03Z");
        assert!(parse_clf("garbage", 9, "t").is_err());
    }

    #[test]
    fn timestamps_need_an_offset_or_a_zone() {
        assert_eq!(
            meterkit::time::fmt_ts(parse_timestamp("2020-04-01 01:00:00+00:00", None).unwrap()),
            "2020-04-01T01:00:00Z"
        );
        assert!(parse_timestamp("2014-04-10 00:04:00", None).unwrap_err().message().contains("--assume-tz"));
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            meterkit::time::fmt_ts(parse_timestamp("2014-04-10 00:04:00", Some(ny)).unwrap()),
            "2014-04-10T04:04:00Z"
        );
        assert!(parse_timestamp("2024-11-03 01:30:00", Some(ny)).unwrap_err().message().contains("twice"));
        assert!(parse_timestamp("2024-03-10 02:30:00", Some(ny)).unwrap_err().message().contains("does not exist"));
    }
}

/// Fuzz targets of the three readers (issue 12, section 7): structure-aware files (lines built
/// from the format's parts, with BOMs, CRLF, invalid UTF-8, repeated keys, huge numbers) and raw
/// bytes. Each asserts no panic; every line's outcome at its own line, in order; a clean error
/// for every refused line (and always for one that is not UTF-8); every record read round-trips
/// through its JSON form; derived ids are deterministic and never shared by different records.
#[cfg(test)]
mod fuzz {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::fuzz_driver::{fuzz, mangled, number_text};

    fn args(format: Format) -> InputArgs {
        InputArgs {
            file: PathBuf::from("fuzz"),
            format: Some(format),
            timestamp_column: Some("ts".into()),
            quantity_column: Some("q".into()),
            subject: None,
            subject_column: Some("s".into()),
            metric: Some("kwh".into()),
            id_column: None,
            dimension_columns: vec!["carrier".into()],
            assume_tz: Some("Europe/London".into()),
            strict: false,
            all_tenants: false,
        }
    }

    /// Read `bytes`; check the outcome of every line; return the records with their lines.
    fn read_checked(a: &InputArgs, bytes: &[u8]) -> std::result::Result<Vec<(u64, UsageRecord)>, String> {
        let physical: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let mut last = 0u64;
        let mut out = Vec::new();
        let mut problem = None;
        let result = a.read_from(bytes, "t", &mut |line, parsed| {
            if line <= last && a.format != Some(Format::Csv) || line == 0 || line as usize > physical.len() {
                problem.get_or_insert(format!("line {line} out of order or range (after {last})"));
            }
            last = line;
            match parsed {
                Err(e) if e.message().is_empty() => {
                    problem.get_or_insert(format!("line {line}: an empty error"));
                }
                Err(_) => {}
                Ok(records) => {
                    if a.format != Some(Format::Csv) && std::str::from_utf8(physical[line as usize - 1]).is_err() {
                        problem.get_or_insert(format!("line {line} is not UTF-8 but was read"));
                    }
                    out.extend(records.into_iter().map(|r| (line, r)));
                }
            }
            Ok(())
        });
        if let Some(p) = problem {
            return Err(p);
        }
        if let Err(e) = result {
            // Only the CSV header may stop a file.
            if a.format != Some(Format::Csv) || e.message().is_empty() {
                return Err(format!("the read stopped: {e:?}"));
            }
        }
        for (line, r) in &out {
            let json = serde_json::to_string(r).map_err(|e| e.to_string())?;
            let back = parse_jsonl(&json, &r.tenant, false).map_err(|e| format!("line {line}: {json}: {e:?}"))?;
            if back.len() != 1 || back[0] != *r {
                return Err(format!("line {line}: {json} read back as {back:?}"));
            }
        }
        Ok(out)
    }

    fn lines_file(line: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        (any::<bool>(), any::<bool>(), proptest::collection::vec(line, 0..12)).prop_map(|(bom, crlf, lines)| {
            let mut out = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            for l in lines {
                out.extend(l);
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            out
        })
    }

    fn jsonl_line() -> impl Strategy<Value = Vec<u8>> {
        const KEYS: &[&str] =
            &["id", "tenant", "subject", "metric", "quantity", "timestamp", "end", "dimensions", "quality", "x"];
        const VALUES: &[&str] = &[
            "\"r1\"",
            "\"r2\"",
            "\"t\"",
            "\"acme\"",
            "\"\"",
            "null",
            "\"kwh\"",
            "\"1.5\"",
            "\"1_000\"",
            "\"-0\"",
            "12345678901234567890.5",
            "5e-324",
            "1e28",
            "\"2024-03-01T10:00:00+01:00\"",
            "\"2024-03-01T10:00:00.5Z\"",
            "\"1600-01-01T00:00:00Z\"",
            "\"2024-03-01T09:00:00Z\"",
            "{\"carrier\":\"a\"}",
            "{\"carrier\":1}",
            "\"flagged\"",
            "\"M\u{fc}ller\"",
            "[]",
        ];
        let value = prop_oneof![
            4 => proptest::sample::select(VALUES).prop_map(str::to_string),
            1 => number_text().prop_map(|n| format!("{n:?}")),
        ];
        let record = proptest::collection::vec((proptest::sample::select(KEYS), value), 0..9).prop_map(|kv| {
            let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", body.join(",")).into_bytes()
        });
        let good = (0u32..4, number_text()).prop_map(|(i, q)| {
            format!(
                r#"{{"id":"r{i}","subject":"s","metric":"kwh","quantity":"{q}","timestamp":"2024-03-01T0{i}:00:00Z"}}"#
            )
            .into_bytes()
        });
        prop_oneof![4 => record, 3 => good, 1 => mangled(VALUES), 1 => Just(b"{\"id\":\"M\xfcller\"}".to_vec())]
    }

    #[test]
    fn fuzz_jsonl() {
        fuzz("cli_jsonl", (lines_file(jsonl_line()), any::<bool>()), |(bytes, all)| {
            let a = InputArgs { all_tenants: *all, ..args(Format::Jsonl) };
            for (line, r) in read_checked(&a, bytes)? {
                if !all && r.tenant != "t" {
                    return Err(format!("line {line}: a record of tenant {} was read for t", r.tenant));
                }
            }
            Ok(())
        });
    }

    fn clf_line() -> impl Strategy<Value = Vec<u8>> {
        const HOST: &[&str] = &["1.2.3.4", "::1", "-", "h\u{e9}", ""];
        const TIME: &[&str] = &[
            "17/May/2015:10:05:03 +0000",
            "17/May/2015:10:05:03 +0200",
            "31/Feb/2015:10:05:03 +0000",
            "17/May/1600:10:05:03 +0000",
            "17/May/2015:10:05:03",
            "x",
        ];
        const REQ: &[&str] = &["GET / HTTP/1.1", "POST /a?b=\\\"c\\\" HTTP/1.0", "", "\\", "get lower", "-"];
        const STATUS: &[&str] = &["200", "304", "999", "20", "abc", ""];
        const SIZE: &[&str] = &["0", "203023", "-", "18446744073709551615", "18446744073709551616", "-5", "1.5"];
        let structured = (
            proptest::sample::select(HOST),
            proptest::sample::select(TIME),
            proptest::sample::select(REQ),
            proptest::sample::select(STATUS),
            proptest::sample::select(SIZE),
            any::<bool>(),
        )
            .prop_map(|(h, t, r, s, z, combined)| {
                let tail = if combined { " \"http://x/\" \"Mozilla\"" } else { "" };
                format!("{h} - - [{t}] \"{r}\" {s} {z}{tail}").into_bytes()
            });
        prop_oneof![5 => structured, 1 => mangled(&["1.2.3.4 - - [", "17/May/2015:10:05:03 +0000", "] \"", "GET / HTTP/1.1", "\" 200 ", "512", "\"", " "])]
    }

    #[test]
    fn fuzz_clf() {
        fuzz("cli_clf", lines_file(clf_line()), |bytes| {
            let a = args(Format::Clf);
            let first = read_checked(&a, bytes)?;
            // Deterministic: the same file again gives the same ids (a replay is a duplicate).
            let again = read_checked(&a, bytes)?;
            if first.iter().map(|(_, r)| &r.id).ne(again.iter().map(|(_, r)| &r.id)) {
                return Err("the ids changed on a second read".into());
            }
            // Distinct within the file: identical lines count separately.
            let mut ids = HashMap::new();
            for (line, r) in &first {
                if let Some(other) = ids.insert(r.id.clone(), *line) {
                    return Err(format!("lines {other} and {line} share the id {}", r.id));
                }
            }
            Ok(())
        });
    }

    fn csv_file() -> impl Strategy<Value = Vec<u8>> {
        const HEADERS: &[&str] =
            &["ts,q,s,carrier", "ts,q,s", "q,ts,s,carrier,extra", "\u{feff}ts,q,s,carrier", "x,y", ""];
        const CELLS: &[&str] = &[
            "2024-03-01 10:00:00",
            "2024-03-31 01:30:00",
            "2024-10-27 01:30:00",
            "2024-03-01T10:00:00Z",
            "1600-01-01",
            "1.5",
            "-0.5",
            "1_000",
            "12345678901234567890.5",
            "0.00000000000000000000000000001",
            "",
            "\"a,b\"",
            "\"multi\nline\"",
            "acme",
            "beta",
            "M\u{fc}ller",
            "\"\"\"\"",
        ];
        let cell = prop_oneof![
            6 => proptest::sample::select(CELLS).prop_map(|c| c.as_bytes().to_vec()),
            1 => number_text().prop_map(String::into_bytes),
            1 => Just(b"M\xfcller".to_vec()),
        ];
        let row = proptest::collection::vec(cell, 0..6).prop_map(|cells| cells.join(&b","[..]));
        let structured =
            (proptest::sample::select(HEADERS), proptest::collection::vec(row, 0..10)).prop_map(|(h, rows)| {
                let mut out = h.as_bytes().to_vec();
                for r in rows {
                    out.push(b'\n');
                    out.extend(r);
                }
                out
            });
        prop_oneof![5 => structured, 1 => mangled(CELLS)]
    }

    #[test]
    fn fuzz_csv() {
        fuzz("cli_csv", csv_file(), |bytes| {
            let records = read_checked(&args(Format::Csv), bytes)?;
            // A derived id names one (subject, timestamp, dimensions).
            let mut by_id: HashMap<&str, &UsageRecord> = HashMap::new();
            for (line, r) in &records {
                if let Some(o) = by_id.insert(&r.id, r) {
                    if (&o.subject, o.timestamp, &o.dimensions) != (&r.subject, r.timestamp, &r.dimensions) {
                        return Err(format!("line {line}: the id {} is shared by different rows", r.id));
                    }
                }
            }
            Ok(())
        });
    }
}
