//! Streaming ingestion for meterkit: consumers for **NATS JetStream** and **MQTT** that pull a
//! batch of messages, ingest it as one engine batch (one store transaction) and acknowledge the
//! messages only after the commit, and [`NatsNotifier`], which publishes the engine's events to
//! `meterkit.events.<tenant>.<kind>`.
//!
//! Delivery is at least once from the broker and exactly once in the store: a message redelivered
//! after a crash (or published twice) carries records whose idempotency keys (tenant, id) are
//! already stored, so they count as duplicates. A message that is not a valid record goes to the
//! dead-letter subject/topic with its reason and is acknowledged, so it never blocks the stream.
//!
//! The `meterkit consume nats://…` / `mqtt://…` command is a thin layer over [`nats::consume`]
//! and [`mqtt::consume`]; see `docs/streaming.md`.

mod batch;
pub mod mqtt;
pub mod nats;
mod notifier;
pub mod payload;

pub use batch::{ConsumeReport, Stop};
pub use mqtt::MqttConsumeOptions;
pub use nats::NatsOptions;
pub use notifier::{event_subject, NatsNotifier, EVENT_QUEUE};
pub use payload::TenantSource;
