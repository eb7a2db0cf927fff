//! Message payloads: one usage record (the JSONL line format) or a JSON array of records, and
//! where each record's tenant comes from.

use meterkit::UsageRecord;
use serde_json::Value;

/// Largest payload decoded, in bytes (8 MiB); a bigger message goes to the dead-letter
/// subject/topic instead of being parsed.
pub const MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// Where a message's records get their tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    /// `--tenant T`: a record without a tenant gets `T`; a record naming another tenant is
    /// invalid (as in `meterkit ingest`).
    Fixed(String),
    /// `--all-tenants`: every record names its own tenant.
    FromRecord,
    /// `--tenant-from-subject N`: the N-th token (1-based) of the NATS subject (split at `.`) or
    /// MQTT topic (split at `/`); a record naming another tenant is invalid.
    SubjectToken(usize),
}

impl TenantSource {
    /// The tenant required of the records of a message on `subject` (`None`: each record's own).
    ///
    /// # Errors
    /// A reason (for the dead-letter message) when the subject has fewer than N tokens or the
    /// token is empty.
    pub fn tenant_for(&self, subject: &str, separator: char) -> Result<Option<String>, String> {
        match self {
            TenantSource::Fixed(t) => Ok(Some(t.clone())),
            TenantSource::FromRecord => Ok(None),
            TenantSource::SubjectToken(n) => match subject.split(separator).nth(n.saturating_sub(1)) {
                Some(token) if !token.is_empty() && *n > 0 => Ok(Some(token.to_string())),
                _ => Err(format!("the subject '{subject}' has no tenant token {n}")),
            },
        }
    }
}

/// Decode a message: a JSON object (one usage record, as a line of a JSONL file) or a JSON array
/// of such objects. With `tenant` given, a record without a tenant gets it and a record naming
/// another tenant is invalid; without it, each record must name its tenant.
///
/// # Errors
/// The reason the message is not valid (it then goes to the dead-letter subject/topic): too
/// large, not UTF-8 JSON, not an object or array of objects, a record that is not a usage record
/// (the serde message names the field), or a tenant mismatch. One bad record makes the whole
/// message invalid, so a message is stored entirely or not at all.
pub fn decode(payload: &[u8], tenant: Option<&str>) -> Result<Vec<UsageRecord>, String> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!("the payload has {} bytes, more than {MAX_PAYLOAD_BYTES}", payload.len()));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| record(v, tenant).map_err(|e| format!("record {i} of the array: {e}")))
            .collect(),
        v @ Value::Object(_) => Ok(vec![record(v, tenant)?]),
        _ => Err("the payload is neither a JSON object (a usage record) nor an array of them".to_string()),
    }
}

fn record(mut value: Value, tenant: Option<&str>) -> Result<UsageRecord, String> {
    let Some(obj) = value.as_object_mut() else {
        return Err("not a JSON object".to_string());
    };
    match (obj.get("tenant"), tenant) {
        (None | Some(Value::Null), Some(t)) => {
            obj.insert("tenant".into(), t.into());
        }
        (None | Some(Value::Null), None) => return Err("the record has no tenant".to_string()),
        (Some(Value::String(t)), Some(want)) if t != want => {
            return Err(format!("the record's tenant '{t}' is not the tenant '{want}' of this consumer"));
        }
        _ => {}
    }
    serde_json::from_value(value).map_err(|e| format!("not a usage record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str =
        r#"{"id":"r1","subject":"sim-1","metric":"bytes","quantity":"1024","timestamp":"2024-03-01T10:00:00Z"}"#;

    #[test]
    fn one_record_or_an_array() {
        let one = decode(REC.as_bytes(), Some("acme")).unwrap();
        assert_eq!((one.len(), one[0].tenant.as_str()), (1, "acme"));
        let two = decode(format!("[{REC},{}]", REC.replace("r1", "r2")).as_bytes(), Some("acme")).unwrap();
        assert_eq!(two.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);
    }

    #[test]
    fn invalid_messages_say_why() {
        assert!(decode(b"{not json", Some("a")).unwrap_err().starts_with("invalid JSON"));
        assert!(decode(b"42", Some("a")).unwrap_err().contains("neither"));
        let e = decode(REC.replace("\"quantity\":\"1024\",", "").as_bytes(), Some("a")).unwrap_err();
        assert!(e.contains("quantity"), "{e}");
        let e = decode(REC.replace("{\"id\"", "{\"tenant\":\"other\",\"id\"").as_bytes(), Some("a")).unwrap_err();
        assert!(e.contains("'other'"), "{e}");
        assert_eq!(decode(REC.as_bytes(), None).unwrap_err(), "the record has no tenant");
        let e = decode(format!("[{REC},7]").as_bytes(), Some("a")).unwrap_err();
        assert!(e.starts_with("record 1 of the array"), "{e}");
    }

    #[test]
    fn tenant_from_a_subject_token() {
        let src = TenantSource::SubjectToken(2);
        assert_eq!(src.tenant_for("usage.acme.sim", '.').unwrap().as_deref(), Some("acme"));
        assert_eq!(src.tenant_for("sims/acme/usage", '/').unwrap().as_deref(), Some("acme"));
        assert!(src.tenant_for("usage", '.').is_err());
        assert!(TenantSource::SubjectToken(0).tenant_for("a.b", '.').is_err());
    }
}
