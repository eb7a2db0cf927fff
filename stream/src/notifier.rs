//! [`NatsNotifier`]: the engine's events, published to `meterkit.events.<tenant>.<kind>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use meterkit::{Event, Notifier};

/// Most events waiting to be published; more are dropped (and counted) rather than held.
pub const EVENT_QUEUE: usize = 65_536;

/// A [`Notifier`] that publishes every engine event as its JSON (the bindings' event JSON,
/// `{"type":"threshold_crossed",…}`) on the NATS subject `meterkit.events.<tenant>.<kind>`,
/// `<kind>` being the `type` (`threshold_crossed` = quota reached, `window_closed`,
/// `anomaly_detected` = alert, `invoice_overdue`, `bill_issued`, `record_rejected`,
/// `late_record`). A dashboard subscribes to `meterkit.events.<its tenant>.>`.
///
/// Tenants are subject tokens: `.`, `*`, `>` and whitespace in a tenant become `_`.
///
/// `notify` never blocks the engine: events go through a bounded queue ([`EVENT_QUEUE`]) to a
/// task that publishes them in order on the given connection (core NATS, at most once: a
/// subscriber that is away misses them). When the queue is full an event is dropped and counted
/// in [`NatsNotifier::dropped`].
#[derive(Debug)]
pub struct NatsNotifier {
    tx: mpsc::Sender<(String, Vec<u8>)>,
    dropped: Arc<AtomicU64>,
}

impl NatsNotifier {
    /// A notifier publishing on `client`; its publishing task runs on the Tokio runtime of
    /// `handle` until the notifier is dropped (then it flushes and ends).
    pub fn new(client: async_nats::Client, handle: &tokio::runtime::Handle) -> Self {
        let (tx, mut rx) = mpsc::channel::<(String, Vec<u8>)>(EVENT_QUEUE);
        handle.spawn(async move {
            while let Some((subject, body)) = rx.recv().await {
                if client.publish(subject, body.into()).await.is_err() {
                    break;
                }
            }
            let _ = client.flush().await;
        });
        NatsNotifier { tx, dropped: Arc::default() }
    }

    /// Connect to `url` (`nats://HOST:PORT`) and publish there; see [`NatsNotifier::new`].
    ///
    /// # Errors
    /// [`meterkit::ErrorKind::Store`] (retryable) when the server cannot be reached.
    pub async fn connect(url: &str) -> meterkit::Result<Self> {
        let client =
            async_nats::connect(url).await.map_err(|e| crate::batch::broker_err("NATS", "cannot connect", e))?;
        Ok(Self::new(client, &tokio::runtime::Handle::current()))
    }

    /// Events dropped because the queue was full (or the connection is closed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The subject of an event: `meterkit.events.<tenant>.<kind>`.
pub fn event_subject(event: &Event) -> String {
    let kind = serde_json::to_value(event)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "event".to_string());
    format!("meterkit.events.{}.{kind}", token(event_tenant(event)))
}

fn event_tenant(event: &Event) -> &str {
    match event {
        Event::RecordRejected { tenant, .. }
        | Event::LateRecord { tenant, .. }
        | Event::WindowClosed { tenant, .. }
        | Event::ThresholdCrossed { tenant, .. }
        | Event::BillIssued { tenant, .. }
        | Event::InvoiceOverdue { tenant, .. } => tenant,
        Event::AnomalyDetected { finding } => &finding.tenant,
        _ => "_",
    }
}

fn token(tenant: &str) -> String {
    if tenant.is_empty() {
        return "_".to_string();
    }
    tenant.chars().map(|c| if matches!(c, '.' | '*' | '>') || c.is_whitespace() { '_' } else { c }).collect()
}

impl Notifier for NatsNotifier {
    fn notify(&self, event: &Event) {
        let Ok(body) = serde_json::to_vec(event) else { return };
        if self.tx.try_send((event_subject(event), body)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_tenant_and_kind() {
        let e = Event::RecordRejected {
            tenant: "acme.eu".into(),
            id: "r1".into(),
            kind: meterkit::ErrorKind::InvalidRecord,
            reason: "x".into(),
        };
        assert_eq!(event_subject(&e), "meterkit.events.acme_eu.record_rejected");
    }
}
