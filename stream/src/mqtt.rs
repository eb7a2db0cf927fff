//! The MQTT consumer: a persistent session (clean session off) subscribed with QoS 1 (or 0, 2),
//! manual acknowledgements sent only after the batch is committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meterkit::{Engine, Error, ErrorKind, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::batch::{broker_err, dead_letter_body, ingest_batch, Clock, ConsumeReport, Stop};
use crate::payload::TenantSource;

/// A batch closes when it is full, `max_wait` after its first message, or when no message came
/// for this long (the broker sends at most its in-flight window of unacknowledged messages —
/// mosquitto's `max_inflight_messages` — before it waits for our acknowledgements).
pub const MQTT_GAP: Duration = Duration::from_millis(50);

/// How to consume from an MQTT broker (the flags of `meterkit consume mqtt://…`).
#[derive(Debug, Clone)]
pub struct MqttConsumeOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic filter, e.g. `sims/+/usage`.
    pub topic: String,
    /// Subscription QoS: 0, 1 or 2 (1 or 2 for at-least-once; 0 loses what is in flight on a
    /// crash).
    pub qos: u8,
    /// Client id: the persistent session's name (the broker keeps the subscription and queues
    /// QoS ≥ 1 messages for it while the consumer is away).
    pub client_id: String,
    /// Most messages per batch (= per store transaction). The in-flight limit is the broker's
    /// window of unacknowledged QoS ≥ 1 messages per client (mosquitto `max_inflight_messages`).
    pub batch: usize,
    /// Longest time a batch stays open after its first message.
    pub max_wait: Duration,
    /// Topic that invalid messages are published to (QoS 1) with their reason.
    pub dead_letter: Option<String>,
    /// Return after this long without messages; `None`: run until [`Stop`] is requested.
    pub idle_exit: Option<Duration>,
    /// Where records get their tenant.
    pub tenant: TenantSource,
}

fn qos(level: u8) -> Result<QoS> {
    match level {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(Error::new(ErrorKind::Parse, format!("--qos {level}: QoS is 0, 1 or 2.")).with_field("qos")),
    }
}

/// Consume until idle (`idle_exit`) or until `stop` is requested, then finish the batch in hand,
/// acknowledge it, disconnect and return what was done.
///
/// The session is persistent (clean session off) with manual acknowledgements: a message is
/// acknowledged (PUBACK/PUBREC) only after the batch holding it is committed, so a consumer
/// killed before that gets it again from the broker when it reconnects with the same client id;
/// the record is then a duplicate by idempotency key. The network task reconnects on its own
/// (every 500 ms) when the broker goes away and comes back.
///
/// # Errors
/// [`ErrorKind::Parse`] for a QoS other than 0–2; [`ErrorKind::Store`] (retryable) when the
/// broker was never reached; the engine's errors when a batch cannot be stored (nothing of it is
/// acknowledged).
pub async fn consume(engine: Arc<Engine>, opts: &MqttConsumeOptions, stop: &Stop) -> Result<ConsumeReport> {
    let qos = qos(opts.qos)?;
    let mut mo = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    mo.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(crate::payload::MAX_PAYLOAD_BYTES + 4096, crate::payload::MAX_PAYLOAD_BYTES + 4096);
    let (client, mut eventloop) = AsyncClient::new(mo, opts.batch.max(16) * 2 + 16);
    client.subscribe(opts.topic.clone(), qos).await.map_err(|e| broker_err("MQTT", "cannot subscribe", e))?;
    // Unbounded on purpose: the network task must never wait for the ingest, or the
    // acknowledgements it has to send would wait for it in turn (a deadlock). What it holds is
    // bounded by the broker's in-flight window for QoS ≥ 1 (unacknowledged messages).
    let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
    let connected = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let poller = {
        let (client, topic, connected, stopping) =
            (client.clone(), opts.topic.clone(), Arc::clone(&connected), Arc::clone(&stopping));
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            break;
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        connected.store(true, Ordering::SeqCst);
                        if !first && !ack.session_present {
                            let _ = client.try_subscribe(topic.clone(), qos);
                        }
                        first = false;
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        eprintln!("meterkit consume: MQTT connection: {e}; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    };
    let mut report = ConsumeReport::default();
    let mut clock = Clock::new();
    let result = async {
        while !stop.requested() {
            let messages = next_batch(&mut rx, opts).await;
            if messages.is_empty() {
                if opts.idle_exit.is_some_and(|d| clock.idle_for() >= d) {
                    if !connected.load(Ordering::SeqCst) {
                        return Err(broker_err("MQTT", "never connected", format!("{}:{}", opts.host, opts.port)));
                    }
                    break;
                }
                continue;
            }
            clock.received();
            report.messages += messages.len() as u64;
            let bodies: Vec<(String, bytes::Bytes)> =
                messages.iter().map(|p| (p.topic.clone(), p.payload.clone())).collect();
            let dead = ingest_batch(&engine, &bodies, &opts.tenant, '/', &mut report).await?;
            if let Some(dl) = &opts.dead_letter {
                for d in &dead {
                    let (topic, payload) = &bodies[d.index];
                    client
                        .publish(dl.clone(), QoS::AtLeastOnce, false, dead_letter_body(d, topic, payload))
                        .await
                        .map_err(|e| broker_err("MQTT", "cannot publish to the dead-letter topic", e))?;
                }
            }
            for p in &messages {
                client.ack(p).await.map_err(|e| broker_err("MQTT", "cannot acknowledge", e))?;
            }
            clock.acked(&mut report);
        }
        Ok(())
    }
    .await;
    stopping.store(true, Ordering::SeqCst);
    let _ = timeout(Duration::from_secs(5), client.disconnect()).await;
    let abort = poller.abort_handle();
    if timeout(Duration::from_secs(5), poller).await.is_err() {
        abort.abort();
    }
    result.map(|()| report)
}

/// Up to `batch` messages: wait up to 200 ms for a first one, then take more until the batch is
/// full, `max_wait` has passed or none came for [`MQTT_GAP`].
async fn next_batch(rx: &mut mpsc::UnboundedReceiver<Publish>, opts: &MqttConsumeOptions) -> Vec<Publish> {
    let mut out = Vec::new();
    let Ok(Some(first)) = timeout(Duration::from_millis(200).min(opts.max_wait), rx.recv()).await else {
        return out;
    };
    out.push(first);
    let deadline = Instant::now() + opts.max_wait;
    while out.len() < opts.batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left.min(MQTT_GAP), rx.recv()).await {
            Ok(Some(p)) => out.push(p),
            _ => break,
        }
    }
    out
}
