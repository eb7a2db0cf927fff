//! `meterkit ingest` (and `report`) of a file: records in batches of `--batch-size`, one
//! transaction each; malformed lines and rejected records reported at their line.
//!
//! A repeat run re-reads what it sent before. JSON lines are read a batch's worth at a time, and
//! a batch whose records are all stored with the same content is answered without building a
//! record per line: each line's content is borrowed from the text ([`RefBatch::push_object`])
//! and compared in place with the stored records ([`Engine::ingest_if_stored`]). Any other is
//! read line by line, into the same batches as always (the outcome of a key repeated with other
//! content in one batch depends on the batch, so the batches stay those of `--batch-size`).

use std::collections::{BTreeSet, HashMap};

use meterkit::record::{RecordRef, RefBatch};
use meterkit::{Engine, Error, ErrorKind, Result, UsageRecord};

use crate::input::{located, parse_jsonl, Format, InputArgs, LineChunk, LineResult};

/// How `ingest_file` stores: records per transaction, the feed, the validation of every metric.
pub struct IngestHow<'a> {
    /// Records per transaction.
    pub batch_size: usize,
    /// The named feed (`--source`), if any.
    pub feed: Option<&'a Feed<'a>>,
    /// The validation of every metric (`--config`), if any.
    pub validation: Option<&'a meterkit::vee::ValidationConfig>,
}

/// A named feed for `ingest --source`: its name, and with `--skip-seen` the watermark before
/// which records are skipped.
pub struct Feed<'a> {
    /// The source's name.
    pub name: &'a str,
    /// Records older than this are skipped (`--skip-seen`: the source's watermark).
    pub skip_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// What reading a file into the engine did.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Records stored.
    pub accepted: u64,
    /// Records already stored with the same content.
    pub duplicates: u64,
    /// Malformed lines plus records the engine rejected.
    pub rejected: u64,
    /// Metrics seen.
    pub metrics: BTreeSet<String>,
    /// Subjects seen.
    pub subjects: BTreeSet<String>,
    /// Records skipped as older than the source's watermark (`--skip-seen`).
    pub skipped: u64,
}

/// A 64-bit hash (std's SipHash with fixed keys: stable within a run).
fn hash_of(value: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// A record's idempotency key `(tenant, id)` and its content (what
/// [`UsageRecord::same_content`] compares: quantities by value, quality ignored), hashed.
fn key_and_content(r: &UsageRecord) -> (u64, u64) {
    // The quantity by value (1.0 = 1): its normalized mantissa and scale.
    let q = r.quantity.normalize();
    let content = (&r.subject, &r.metric, (q.mantissa(), q.scale()), r.timestamp, r.end, &r.dimensions);
    (hash_of(&(&r.tenant, &r.id)), hash_of(&content))
}

/// The first occurrence in the file of each idempotency key: content hash and line.
type FirstSeen = HashMap<u64, (u64, u64)>;

/// `--strict`: read the whole file and check every line and record — parsed, the record's own
/// checks ([`UsageRecord::check`]), no key repeated with other content in the file — before
/// anything is stored. The first failure is an error `file:line: reason`.
fn strict_check(input: &InputArgs, tenant: &str) -> Result<()> {
    let mut first: FirstSeen = HashMap::new();
    let fail = |line: u64, e: &Error| Error::new(e.kind(), located(&input.file, line, e.message())).with_line(line);
    input.read(tenant, &mut |line, parsed| {
        for r in parsed.map_err(|e| fail(line, &e))? {
            r.check().map_err(|e| fail(line, &e))?;
            let (key, content) = key_and_content(&r);
            match first.get(&key) {
                Some(&(c, at)) if c != content => {
                    let e = Error::new(
                        ErrorKind::Conflict,
                        format!("record '{}' conflicts with line {at}: same id, other content", r.id),
                    )
                    .with_record_id(r.id.clone());
                    return Err(fail(line, &e));
                }
                Some(_) => {}
                None => {
                    first.insert(key, (content, line));
                }
            }
        }
        Ok(())
    })
}

/// The line of each rejection of a batch (`lines[i]` is the line of `batch[i]`). A conflict is
/// placed at an occurrence of its key that is not stored with its content (the conflicting line,
/// not a repeat of the stored record), any other rejection at its key's next occurrence.
///
/// # Errors
/// [`ErrorKind::Store`] from looking up the stored records of a key with several occurrences.
fn rejection_lines(
    engine: &Engine,
    batch: &[UsageRecord],
    lines: &[u64],
    rejected: &[meterkit::engine::Rejection],
) -> Result<Vec<u64>> {
    let mut occurrences: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, r) in batch.iter().enumerate() {
        occurrences.entry((r.tenant.as_str(), r.id.as_str())).or_default().push(i);
    }
    let mut used: HashMap<(&str, &str), usize> = HashMap::new();
    let mut at = Vec::with_capacity(rejected.len());
    for rej in rejected {
        let key = (rej.tenant.as_str(), rej.id.as_str());
        let all = occurrences.get(&key).map_or(&[][..], Vec::as_slice);
        let mut candidates = all.to_vec();
        if rej.kind == ErrorKind::Conflict && all.len() > 1 {
            let mut differing = Vec::new();
            for &i in all {
                if !is_stored(engine, &batch[i])? {
                    differing.push(i);
                }
            }
            if !differing.is_empty() {
                candidates = differing;
            }
        }
        let n = used.entry(key).or_insert(0);
        at.push(candidates.get((*n).min(candidates.len().saturating_sub(1))).map_or(0, |&i| lines[i]));
        *n += 1;
    }
    Ok(at)
}

/// Whether `r` is stored with its content.
///
/// # Errors
/// [`ErrorKind::Store`].
fn is_stored(engine: &Engine, r: &UsageRecord) -> Result<bool> {
    let to = r.timestamp.checked_add_signed(chrono::TimeDelta::nanoseconds(1)).unwrap_or(r.timestamp);
    let stored = engine.records(&r.tenant, &r.metric, Some(&r.subject), r.timestamp, to)?;
    Ok(stored.iter().any(|s| s.same_content(r)))
}

/// Read `input` and ingest it in batches of `batch_size` records, one transaction each.
/// Malformed lines are reported on stderr as `file:line: reason` and skipped, and so are the
/// records the engine rejects (a conflict at the conflicting line); with `--strict` the whole
/// file is checked first ([`strict_check`]) and nothing is stored if any check fails. A chunk of
/// JSON lines that a repeat run re-reads is answered in place (see the module's doc).
///
/// # Errors
/// As [`Engine::ingest`]; [`ErrorKind::Parse`] for a file that cannot be read.
pub fn ingest_file(engine: &Engine, input: &InputArgs, tenant: &str, how: &IngestHow<'_>) -> Result<IngestOutcome> {
    if input.strict {
        strict_check(input, tenant)?;
    }
    let mut run = Run {
        engine,
        input,
        tenant,
        how,
        outcome: IngestOutcome::default(),
        batch: Vec::with_capacity(how.batch_size),
        lines: Vec::with_capacity(how.batch_size),
    };
    if input.format()? == Format::Jsonl {
        input.read_line_chunks(how.batch_size, &mut |chunk| run.chunk(chunk))?;
    } else {
        input.read_pipelined(tenant, &mut |line, parsed| run.line(line, parsed))?;
    }
    run.flush()?;
    Ok(run.outcome)
}

/// Add a line's record to `batch` ([`RefBatch::push_object`]); false for a line that is not text.
fn push<'t>(batch: &mut RefBatch<'t>, text: std::result::Result<&'t str, &Error>, tenant: &'t str) -> bool {
    text.is_ok_and(|t| batch.push_object(t, tenant))
}

/// An ingest of a file under way: the outcome so far, and the batch being filled.
struct Run<'a> {
    engine: &'a Engine,
    input: &'a InputArgs,
    tenant: &'a str,
    how: &'a IngestHow<'a>,
    outcome: IngestOutcome,
    batch: Vec<UsageRecord>,
    lines: Vec<u64>,
}

impl Run<'_> {
    /// A chunk of JSON lines (one batch's worth): answered in place when it is a repeat and
    /// starts a batch, else line by line.
    fn chunk(&mut self, chunk: LineChunk) -> Result<()> {
        if self.batch.is_empty() && self.stored_chunk(&chunk)? {
            return Ok(());
        }
        let (tenant, all_tenants) = (self.tenant, self.input.all_tenants);
        chunk.for_each(&mut |line, text| self.line(line, text.and_then(|t| parse_jsonl(t, tenant, all_tenants))))
    }

    /// Whether `chunk`, read from the start of a batch, was answered in place: every line one
    /// record object of this command's tenant, and either all of them skipped as older than the
    /// source's watermark or none, each then stored with the same content. The chunk is then
    /// exactly the batch the line-by-line way would make, and all duplicates. False, with
    /// nothing changed, otherwise. Its first line is looked up before the rest is read: in a
    /// first run it is new.
    fn stored_chunk(&mut self, chunk: &LineChunk) -> Result<bool> {
        let skip = self.how.feed.and_then(|f| f.skip_before);
        let skipped = |r: &RecordRef<'_>| skip.is_some_and(|w| r.timestamp < w);
        let mut batch = RefBatch::default();
        let mut lines = chunk.lines();
        let Some((_, first)) = lines.next() else { return Ok(false) };
        if !push(&mut batch, first, self.tenant) || !self.own(&batch.refs()) {
            return Ok(false);
        }
        let first = batch.refs();
        if !skipped(&first[0]) && self.engine.ingest_if_stored(None, &first)?.is_none() {
            return Ok(false);
        }
        if !lines.all(|(_, text)| push(&mut batch, text, self.tenant)) {
            return Ok(false);
        }
        let refs = batch.refs();
        let old = refs.iter().filter(|r| skipped(r)).count();
        if old == refs.len() {
            self.outcome.skipped += old as u64;
            return Ok(true);
        }
        if old > 0 || !self.own(&refs) {
            return Ok(false);
        }
        let Some(report) = self.engine.ingest_if_stored(self.how.feed.map(|f| f.name), &refs)? else {
            return Ok(false);
        };
        self.outcome.duplicates += report.duplicates;
        refs.iter().try_for_each(|r| self.note(r.metric, r.subject)).map(|()| true)
    }

    /// Whether every record is of this command's tenant (any tenant with `--all-tenants`).
    fn own(&self, refs: &[RecordRef<'_>]) -> bool {
        self.input.all_tenants || refs.iter().all(|r| r.tenant == self.tenant)
    }

    /// One line's records (or why it is malformed): skipped, or added to the batch.
    fn line(&mut self, line: u64, parsed: LineResult) -> Result<()> {
        match parsed {
            Ok(records) => {
                for r in records {
                    if self.how.feed.and_then(|f| f.skip_before).is_some_and(|w| r.timestamp < w) {
                        self.outcome.skipped += 1;
                        continue;
                    }
                    self.note(&r.metric, &r.subject)?;
                    self.batch.push(r);
                    self.lines.push(line);
                }
            }
            Err(e) => {
                eprintln!("{}", located(&self.input.file, line, e.message()));
                self.outcome.rejected += 1;
            }
        }
        if self.batch.len() >= self.how.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// A record's metric and subject seen: the first of a metric gets its validation.
    fn note(&mut self, metric: &str, subject: &str) -> Result<()> {
        if !self.outcome.metrics.contains(metric) {
            if let Some(cfg) = self.how.validation {
                self.engine.set_validation(metric, cfg.clone())?;
            }
            self.outcome.metrics.insert(metric.to_string());
        }
        if !self.outcome.subjects.contains(subject) {
            self.outcome.subjects.insert(subject.to_string());
        }
        Ok(())
    }

    /// Ingest the batch (one transaction) and report its rejections at their lines.
    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let report = match self.how.feed {
            Some(f) => self.engine.ingest_from(f.name, &self.batch)?,
            None => self.engine.ingest(&self.batch)?,
        };
        self.outcome.accepted += report.accepted;
        self.outcome.duplicates += report.duplicates;
        self.outcome.rejected += report.rejected.len() as u64;
        let at = rejection_lines(self.engine, &self.batch, &self.lines, &report.rejected)?;
        for (r, line) in report.rejected.iter().zip(at) {
            eprintln!("{}", located(&self.input.file, line, &format!("record '{}': {}", r.id, r.reason)));
        }
        self.batch.clear();
        self.lines.clear();
        Ok(())
    }
}
