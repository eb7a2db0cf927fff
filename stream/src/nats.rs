//! The NATS JetStream consumer: pull a batch from a durable pull consumer, ingest it as one
//! engine batch, acknowledge after the commit.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, stream};
use futures::StreamExt;
use meterkit::{Engine, Result};

use crate::batch::{broker_err, dead_letter_body, ingest_batch, Clock, ConsumeReport, Stop};
use crate::payload::TenantSource;

/// How to consume from JetStream (the flags of `meterkit consume nats://…`).
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// Server URL, `nats://HOST:PORT`.
    pub url: String,
    /// The stream's name.
    pub stream: String,
    /// The subject filter of the durable consumer (and of the stream when it is created), e.g.
    /// `usage.>`.
    pub subject: String,
    /// The durable consumer's name: every process using the same name shares one work queue.
    pub durable: String,
    /// Create the stream (subjects = `subject`, limits retention, file storage) when missing.
    pub create_stream: bool,
    /// Most messages per batch (= per store transaction).
    pub batch: usize,
    /// Longest wait for a batch to fill before the messages in hand are ingested.
    pub max_wait: Duration,
    /// Subject that invalid messages are published to, with their reason; without it they are
    /// only counted (and still acknowledged, so they never block the stream).
    pub dead_letter: Option<String>,
    /// Return after this long without messages; `None`: run until [`Stop`] is requested.
    pub idle_exit: Option<Duration>,
    /// Where records get their tenant.
    pub tenant: TenantSource,
}

impl NatsOptions {
    /// The in-flight limit: the most messages delivered and not yet acknowledged on the durable
    /// consumer (its `max_ack_pending`), set when meterkit creates the consumer: 4 batches, so
    /// that up to 4 consumers each hold a full batch and the server holds back the rest.
    pub fn in_flight(&self) -> i64 {
        (self.batch as i64).saturating_mul(4)
    }
}

/// Consume until idle (`idle_exit`) or until `stop` is requested, then finish the batch in hand,
/// acknowledge it and return what was done. Engine events are sent to the engine's notifier as
/// usual (see [`crate::NatsNotifier`]).
///
/// Each batch: pull up to `batch` messages (waiting at most `max_wait`), decode them, ingest all
/// their records with one [`Engine::ingest`] call (one store transaction), publish invalid
/// messages and rejected records to the dead-letter subject and flush, then acknowledge every
/// message of the batch. A crash before the acknowledgements makes JetStream redeliver the
/// messages after the consumer's `ack_wait`; their records are then duplicates by idempotency key.
///
/// # Errors
/// [`meterkit::ErrorKind::Store`] (retryable) when the server cannot be reached, the stream is
/// missing (without `create_stream`) or a request fails; the engine's errors when a batch cannot
/// be stored (its messages are then not acknowledged and will be redelivered).
pub async fn consume(engine: Arc<Engine>, opts: &NatsOptions, stop: &Stop) -> Result<ConsumeReport> {
    let client = async_nats::connect(opts.url.as_str()).await.map_err(|e| broker_err("NATS", "cannot connect", e))?;
    let js = jetstream::new(client.clone());
    let stream = if opts.create_stream {
        js.get_or_create_stream(stream::Config {
            name: opts.stream.clone(),
            subjects: vec![opts.subject.clone()],
            ..Default::default()
        })
        .await
        .map_err(|e| broker_err("NATS", &format!("cannot create the stream '{}'", opts.stream), e))?
    } else {
        js.get_stream(&opts.stream).await.map_err(|e| broker_err("NATS", &format!("no stream '{}'", opts.stream), e))?
    };
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            &opts.durable,
            pull::Config {
                durable_name: Some(opts.durable.clone()),
                ack_policy: AckPolicy::Explicit,
                filter_subject: opts.subject.clone(),
                max_ack_pending: opts.in_flight(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| broker_err("NATS", &format!("cannot open the durable consumer '{}'", opts.durable), e))?;
    let mut report = ConsumeReport::default();
    let mut clock = Clock::new();
    while !stop.requested() {
        let mut batch = consumer
            .batch()
            .max_messages(opts.batch)
            .expires(opts.max_wait)
            .messages()
            .await
            .map_err(|e| broker_err("NATS", "cannot pull a batch", e))?;
        let mut messages = Vec::with_capacity(opts.batch.min(65_536));
        while let Some(m) = batch.next().await {
            messages.push(m.map_err(|e| broker_err("NATS", "cannot receive a message", e))?);
        }
        if messages.is_empty() {
            if opts.idle_exit.is_some_and(|d| clock.idle_for() >= d) {
                break;
            }
            continue;
        }
        clock.received();
        report.messages += messages.len() as u64;
        let bodies: Vec<(String, bytes::Bytes)> =
            messages.iter().map(|m| (m.subject.to_string(), m.payload.clone())).collect();
        let dead = ingest_batch(&engine, &bodies, &opts.tenant, '.', &mut report).await?;
        if let Some(dl) = &opts.dead_letter {
            for d in &dead {
                let (subject, payload) = &bodies[d.index];
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Meterkit-Reason", one_line(&d.reason).as_str());
                headers.insert("Meterkit-Subject", subject.as_str());
                client
                    .publish_with_headers(dl.clone(), headers, dead_letter_body(d, subject, payload).into())
                    .await
                    .map_err(|e| broker_err("NATS", "cannot publish to the dead-letter subject", e))?;
            }
            client.flush().await.map_err(|e| broker_err("NATS", "cannot flush", e))?;
        }
        for m in &messages {
            m.ack().await.map_err(|e| broker_err("NATS", "cannot acknowledge", e))?;
        }
        client.flush().await.map_err(|e| broker_err("NATS", "cannot flush the acknowledgements", e))?;
        clock.acked(&mut report);
    }
    client.flush().await.map_err(|e| broker_err("NATS", "cannot flush", e))?;
    Ok(report)
}

/// A header value: one line, at most 1,000 bytes.
fn one_line(s: &str) -> String {
    let mut line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.len() > 1000 {
        let mut cut = 1000;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}
