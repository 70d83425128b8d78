//! Prometheus metrics: requests by route and status, queue depth, batch sizes, tokens
//! generated, latencies.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The server's metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status code.
    pub requests: IntCounterVec,
    /// Request latency in seconds, by route.
    pub latency: HistogramVec,
    /// Requests waiting for the decode worker.
    pub queue_depth: IntGauge,
    /// Rows in the batch at each decoding step.
    pub batch_rows: Histogram,
    /// Distinct adapters (the base model counting as one) in the batch at each decoding step.
    pub batch_adapters: Histogram,
    /// Tokens generated, all requests together.
    pub tokens: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("datm_requests_total", "HTTP requests answered"),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("datm_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                ],
            ),
            &["route"],
        )?;
        let queue_depth = IntGauge::new("datm_queue_depth", "requests waiting for the decoder")?;
        let batch_rows = Histogram::with_opts(
            HistogramOpts::new("datm_batch_rows", "rows in the batch at each decoding step")
                .buckets(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                ]),
        )?;
        let batch_adapters = Histogram::with_opts(
            HistogramOpts::new(
                "datm_batch_adapters",
                "distinct adapters in the batch at each decoding step",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )?;
        let tokens = IntCounter::new("datm_generated_tokens_total", "tokens generated")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(batch_rows.clone()))?;
        registry.register(Box::new(batch_adapters.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            queue_depth,
            batch_rows,
            batch_adapters,
            tokens,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail on I/O.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
