//! The columnar ingest path: one array per field, typed arrays for the numbers.

// `UsageColumns::dimensions` spells its type out: napi generates the TypeScript type from it (an
// alias would reach index.d.ts as an undefined name), and its macro expansion repeats the type.
#![allow(clippy::type_complexity)]

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use meterkit::engine::IngestReport;
use meterkit::rollup::columnar::{ColumnBatch, StrColumn};
use meterkit::{Decimal, Error as CoreError, ErrorKind};
use napi::bindgen_prelude::{BigInt64Array, Either, Either3, Float64Array, Uint32Array, Unknown};
use napi::Env;
use napi_derive::napi;

/// A dictionary-encoded string column: row `i` has the value `values[codes[i]]` — the cheap way
/// to pass a low-cardinality column (subjects, carriers) as a typed array.
#[napi(object)]
pub struct DictColumn {
    /// The distinct values.
    pub values: Vec<String>,
    /// One index into `values` per row.
    pub codes: Uint32Array,
}

/// A batch of usage records as columns, each of the batch's length (or one value for all rows).
///
/// * `quantity`: a `BigInt64Array` of integers scaled by `10^-scale` (exact: bytes with scale 0,
///   kWh as Wh with scale 3), a `Float64Array` (each number through its shortest decimal text,
///   as `String(n)` shows it), or decimal strings.
/// * `timestamp` / `end`: a `Float64Array` of milliseconds since the Unix epoch (`Date.getTime()`),
///   or RFC 3339 strings.
/// * `dimensions`: per dimension a column of strings (`null` = the record has no such dimension)
///   or a `DictColumn`.
#[napi(object)]
pub struct UsageColumns {
    /// One tenant for every row, or one per row.
    pub tenant: Either<String, Vec<String>>,
    /// The record ids (the idempotency key with the tenant): an array of strings (read as the
    /// text `JSON.stringify` gives of it, one copy for the whole column).
    #[napi(ts_type = "Array<string>")]
    pub id: Unknown<'static>,
    /// One subject for every row, one per row, or dictionary-encoded.
    pub subject: Either3<String, Vec<String>, DictColumn>,
    /// One metric for every row, or one per row.
    pub metric: Either<String, Vec<String>>,
    /// Quantities.
    pub quantity: Either3<BigInt64Array, Float64Array, Vec<String>>,
    /// Decimal places of a `BigInt64Array` quantity column (default 0).
    pub scale: Option<u32>,
    /// Start instants.
    pub timestamp: Either<Float64Array, Vec<String>>,
    /// End instants (optional).
    pub end: Option<Either<Float64Array, Vec<String>>>,
    /// Dimension columns by dimension name.
    pub dimensions: Option<HashMap<String, Either<Vec<Option<String>>, DictColumn>>>,
}

/// A string column in Rust hands.
enum Strings {
    One(String),
    Many(Vec<String>),
    Dict(Vec<String>, Vec<u32>),
}

enum OptStrings {
    Many(Vec<Option<String>>),
    Dict(Vec<String>, Vec<u32>),
}

enum Quantities {
    Scaled(Vec<i64>, u32),
    Floats(Vec<f64>),
    Text(Vec<String>),
}

enum Instants {
    Millis(Vec<f64>),
    Text(Vec<String>),
}

/// The columns copied out of JS memory, ready to become records on any thread.
pub struct Columns {
    tenant: Strings,
    id: Ids,
    subject: Strings,
    metric: Strings,
    quantity: Quantities,
    timestamp: Instants,
    end: Option<Instants>,
    dimensions: Vec<(String, OptStrings)>,
}

fn bad(field: &str, message: String) -> CoreError {
    CoreError::new(ErrorKind::Parse, message).with_field(field)
}

/// The id column: every id in one buffer, with the end of each.
struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    /// The ids of a JSON array of strings.
    fn read(json: &str) -> meterkit::Result<Ids> {
        let mut ids = Ids { text: String::with_capacity(json.len()), ends: Vec::new() };
        let mut de = serde_json::Deserializer::from_str(json);
        serde::Deserializer::deserialize_seq(&mut de, IdsVisitor(&mut ids))
            .and_then(|()| de.end())
            .map_err(|e| bad("id", format!("The id column must be an array of strings ({e}).")))?;
        Ok(ids)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each id, borrowed.
    fn strs(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let id = &self.text[start..end];
                start = end;
                id
            })
            .collect()
    }
}

/// Appends the strings of a JSON array to an [`Ids`].
struct IdsVisitor<'i>(&'i mut Ids);

impl<'de> serde::de::Visitor<'de> for IdsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(IdsVisitor(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.text.push_str(v);
        self.0.ends.push(self.0.text.len());
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for IdsVisitor<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

/// Copy the columns out of the JS values (on the JS thread) and check their lengths.
pub fn read(env: Env, c: UsageColumns) -> meterkit::Result<Columns> {
    // `JSON.stringify` of the id column fails only for values that are no strings anyway.
    let ids = crate::convert::json_text(env, c.id)
        .map_err(|_| bad("id", "The id column must be an array of strings.".to_string()))?;
    let id = Ids::read(&ids.0)?;
    let n = id.len();
    let scale = c.scale.unwrap_or(0);
    if scale > 28 {
        return Err(bad("scale", format!("scale must be 0-28, not {scale}.")));
    }
    let cols = Columns {
        tenant: match c.tenant {
            Either::A(s) => Strings::One(s),
            Either::B(v) => Strings::Many(v),
        },
        subject: match c.subject {
            Either3::A(s) => Strings::One(s),
            Either3::B(v) => Strings::Many(v),
            Either3::C(d) => Strings::Dict(d.values, d.codes.to_vec()),
        },
        metric: match c.metric {
            Either::A(s) => Strings::One(s),
            Either::B(v) => Strings::Many(v),
        },
        quantity: match c.quantity {
            Either3::A(a) => Quantities::Scaled(a.to_vec(), scale),
            Either3::B(a) => Quantities::Floats(a.to_vec()),
            Either3::C(v) => Quantities::Text(v),
        },
        timestamp: instants(c.timestamp),
        end: c.end.map(instants),
        dimensions: c
            .dimensions
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let col = match v {
                    Either::A(v) => OptStrings::Many(v),
                    Either::B(d) => OptStrings::Dict(d.values, d.codes.to_vec()),
                };
                (k, col)
            })
            .collect(),
        id,
    };
    cols.check_lengths(n)?;
    Ok(cols)
}

fn instants(v: Either<Float64Array, Vec<String>>) -> Instants {
    match v {
        Either::A(a) => Instants::Millis(a.to_vec()),
        Either::B(v) => Instants::Text(v),
    }
}

impl Columns {
    fn check_lengths(&self, n: usize) -> meterkit::Result<()> {
        let check = |field: &str, len: Option<usize>| match len {
            Some(len) if len != n => {
                Err(bad(field, format!("The {field} column has {len} rows; the id column has {n}.")))
            }
            _ => Ok(()),
        };
        let strings = |s: &Strings| match s {
            Strings::One(_) => None,
            Strings::Many(v) => Some(v.len()),
            Strings::Dict(_, codes) => Some(codes.len()),
        };
        let instants_len = |i: &Instants| match i {
            Instants::Millis(v) => v.len(),
            Instants::Text(v) => v.len(),
        };
        check("tenant", strings(&self.tenant))?;
        check("subject", strings(&self.subject))?;
        check("metric", strings(&self.metric))?;
        check(
            "quantity",
            Some(match &self.quantity {
                Quantities::Scaled(v, _) => v.len(),
                Quantities::Floats(v) => v.len(),
                Quantities::Text(v) => v.len(),
            }),
        )?;
        check("timestamp", Some(instants_len(&self.timestamp)))?;
        if let Some(end) = &self.end {
            check("end", Some(instants_len(end)))?;
        }
        for (k, col) in &self.dimensions {
            let len = match col {
                OptStrings::Many(v) => v.len(),
                OptStrings::Dict(_, codes) => codes.len(),
            };
            check(&format!("dimensions.{k}"), Some(len))?;
        }
        Ok(())
    }

    /// Ingest the columns as one batch: the core's `Engine::ingest_columns`.
    pub fn ingest(self, engine: &meterkit::Engine) -> meterkit::Result<IngestReport> {
        self.with_batch(|batch| engine.ingest_columns(batch))
    }

    /// Call `f` with the columns as the core's `ColumnBatch`: the numbers and instants converted
    /// here (errors name the field and record id).
    pub fn with_batch<T>(self, f: impl FnOnce(&ColumnBatch<'_>) -> meterkit::Result<T>) -> meterkit::Result<T> {
        let ids = self.id.strs();
        let id_of = ids.as_slice();
        let at = |i: usize| move |e: CoreError| e.with_record_id(id_of[i]);
        let n = ids.len();
        let (mut secs, mut nanos) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let t = instant(&self.timestamp, i, "timestamp").map_err(at(i))?;
            secs.push(t.timestamp());
            nanos.push(t.timestamp_subsec_nanos());
        }
        let ends = match &self.end {
            Some(e) => {
                Some((0..n).map(|i| instant_opt(e, i, "end").map_err(at(i))).collect::<meterkit::Result<Vec<_>>>()?)
            }
            None => None,
        };
        let decimals = match &self.quantity {
            Quantities::Scaled(..) => Vec::new(),
            q => (0..n).map(|i| quantity(q, i).map_err(at(i))).collect::<meterkit::Result<Vec<_>>>()?,
        };
        let (tenant, subject, metric) = (StrCol::of(&self.tenant), StrCol::of(&self.subject), StrCol::of(&self.metric));
        let dims: Vec<(&str, StrCol<'_>)> = self
            .dimensions
            .iter()
            .map(|(k, col)| {
                let col = match col {
                    OptStrings::Many(v) => StrCol::Plain(v.iter().map(Option::as_deref).collect()),
                    OptStrings::Dict(values, codes) => StrCol::Dict(values.iter().map(String::as_str).collect(), codes),
                };
                (k.as_str(), col)
            })
            .collect();
        f(&ColumnBatch {
            metric: metric.column(),
            tenant: tenant.column(),
            subject: subject.column(),
            timestamps: &secs,
            nanos: Some(&nanos),
            ends: ends.as_deref(),
            quantities: match &self.quantity {
                Quantities::Scaled(v, scale) => {
                    meterkit::rollup::columnar::Quantities::Scaled { mantissas: v, scale: *scale }
                }
                _ => meterkit::rollup::columnar::Quantities::Decimal(&decimals),
            },
            ids: Some(&ids),
            dimensions: dims.iter().map(|(k, c)| (*k, c.column())).collect(),
        })
    }
}

/// A string column borrowed as the core's `StrColumn` needs it.
enum StrCol<'a> {
    One(&'a str),
    Plain(Vec<Option<&'a str>>),
    Dict(Vec<&'a str>, &'a [u32]),
}

impl<'a> StrCol<'a> {
    fn of(s: &'a Strings) -> Self {
        match s {
            Strings::One(v) => StrCol::One(v),
            Strings::Many(v) => StrCol::Plain(v.iter().map(|s| Some(s.as_str())).collect()),
            Strings::Dict(values, codes) => StrCol::Dict(values.iter().map(String::as_str).collect(), codes),
        }
    }

    fn column(&self) -> StrColumn<'_> {
        match self {
            StrCol::One(v) => StrColumn::Const(Some(v)),
            StrCol::Plain(v) => StrColumn::Plain(v),
            StrCol::Dict(values, codes) => StrColumn::Dict { values, codes },
        }
    }
}

fn quantity(q: &Quantities, i: usize) -> meterkit::Result<Decimal> {
    let r = match q {
        Quantities::Scaled(v, scale) => Ok(Decimal::new(v[i], *scale)),
        Quantities::Floats(v) => meterkit::decimal::decimal_from_f64(v[i]),
        Quantities::Text(v) => meterkit::decimal::parse_decimal(&v[i]),
    };
    r.map_err(|e| e.with_field("quantity"))
}

fn instant(t: &Instants, i: usize, field: &str) -> meterkit::Result<DateTime<Utc>> {
    match t {
        Instants::Millis(v) => from_millis(v[i], field),
        Instants::Text(v) => meterkit::time::parse_ts(&v[i]).map_err(|e| e.with_field(field)),
    }
}

fn instant_opt(t: &Instants, i: usize, field: &str) -> meterkit::Result<Option<DateTime<Utc>>> {
    match t {
        Instants::Millis(v) if v[i].is_nan() => Ok(None),
        Instants::Text(v) if v[i].is_empty() => Ok(None),
        _ => instant(t, i, field).map(Some),
    }
}

/// Milliseconds since the epoch (fractions kept to the nanosecond) as an instant.
fn from_millis(ms: f64, field: &str) -> meterkit::Result<DateTime<Utc>> {
    let invalid = || bad(field, format!("{ms} is not a valid instant in milliseconds since the epoch."));
    if !ms.is_finite() || ms.abs() > 1e16 {
        return Err(invalid());
    }
    let secs = (ms / 1000.0).floor();
    let nanos = ((ms - secs * 1000.0) * 1e6).round();
    let (secs, nanos) = if nanos >= 1e9 { (secs + 1.0, 0.0) } else { (secs, nanos) };
    DateTime::from_timestamp(secs as i64, nanos as u32).ok_or_else(invalid)
}
