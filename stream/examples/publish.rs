//! Publish a JSONL file of usage records to JetStream, one record per message, for the stream
//! benchmark (`scripts/bench-stream`) and manual runs:
//!
//! ```sh
//! cargo run --release -p meterkit-stream --example publish -- nats://127.0.0.1:4222 STREAM 'usage.acme' records.jsonl
//! ```
//!
//! Creates the stream `STREAM` on `<prefix>.>` when missing, publishes every line to `<prefix>`
//! and waits for every stream acknowledgement (pipelined 5,000 at a time). Prints the count.

use std::io::BufRead;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, stream, subject, file] = args.as_slice() else {
        return Err("usage: publish NATS_URL STREAM SUBJECT FILE.jsonl".into());
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
        let filter = match subject.rsplit_once('.') {
            Some((prefix, _)) => format!("{prefix}.>"),
            None => subject.clone(),
        };
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![filter],
            ..Default::default()
        })
        .await?;
        let reader = std::io::BufReader::new(std::fs::File::open(file)?);
        let (mut acks, mut n) = (Vec::with_capacity(5_000), 0u64);
        for line in reader.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            acks.push(js.publish(subject.clone(), line.into()).await?);
            n += 1;
            if acks.len() == 5_000 {
                for a in acks.drain(..) {
                    a.await?;
                }
            }
        }
        for a in acks {
            a.await?;
        }
        println!("{n}");
        Ok(())
    })
}
