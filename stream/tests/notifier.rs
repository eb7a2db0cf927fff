//! NatsNotifier against a real nats-server: a dashboard subscribed to its tenant's channel gets
//! the engine's events (quota levels reached, rejected records) as JSON, and no other tenant's.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use futures::StreamExt;
use meterkit::{quota::Quota, Engine, UsageRecord, Window};
use meterkit_stream::NatsNotifier;

#[test]
fn a_tenants_channel_gets_its_engine_events() {
    let Some(nats) = support::Nats::start() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let mut acme = client.subscribe("meterkit.events.acme.>").await.unwrap();
        let mut all = client.subscribe("meterkit.events.>").await.unwrap();
        client.flush().await.unwrap();
        let notifier = Arc::new(NatsNotifier::connect(&nats.url()).await.unwrap());
        let engine = Engine::in_memory().with_notifier(notifier.clone());
        let levels = vec![80.into(), 100.into()];
        engine.add_quota(Quota::new("data-plan", "acme", "bytes", Window::Month, "UTC", 1000.into(), levels)).unwrap();
        let at = chrono::Utc.with_ymd_and_hms(2024, 3, 5, 10, 0, 0).unwrap();
        let rec = |tenant: &str, id: &str, q: i64| UsageRecord::new(tenant, id, "sim-1", "bytes", q.into(), at);
        let engine = Arc::new(engine);
        let batch = vec![rec("acme", "a1", 850), rec("other", "o1", 5), rec("acme", "a1", 851)];
        let e = Arc::clone(&engine);
        tokio::task::spawn_blocking(move || e.ingest(&batch).unwrap()).await.unwrap();
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), acme.next()).await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            got.push((m.subject.to_string(), v));
        }
        let subjects: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert!(subjects.contains(&"meterkit.events.acme.threshold_crossed"), "{subjects:?}");
        assert!(subjects.contains(&"meterkit.events.acme.record_rejected"), "{subjects:?}");
        let crossed = &got.iter().find(|(s, _)| s.ends_with("threshold_crossed")).unwrap().1;
        assert_eq!(
            (crossed["quota"].as_str(), crossed["level"].as_str(), crossed["used"].as_str()),
            (Some("data-plan"), Some("80"), Some("850"))
        );
        assert!(subjects.iter().all(|s| s.starts_with("meterkit.events.acme.")), "{subjects:?}");
        let mut everyone = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), all.next()).await {
            everyone.push(m.subject.to_string());
        }
        assert!(everyone.len() >= got.len(), "{everyone:?}");
        assert_eq!(notifier.dropped(), 0);
    });
}
