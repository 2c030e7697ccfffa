//! Metrics ingestion and evaluation at scale (issue 12, target 5): a 44,000-series
//! `/health/metrics` page parsed into the store and every built-in metrics query evaluated on it.
//! Prints wall times; run with `cargo bench --bench metrics`.

#![allow(clippy::print_stdout)] // a bench reports on stdout

use mlsdm_audit::checks;
use mlsdm_audit::promql::{self, Store};
use std::fmt::Write as _;
use std::time::Instant;

fn page(series: usize) -> String {
    let mut text = String::new();
    let buckets = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    let families = series / (buckets.len() + 3);
    for f in 0..families {
        let name = format!("app_latency_{f}_seconds");
        let _ = writeln!(text, "# HELP {name} Latency.\n# TYPE {name} histogram");
        for (i, le) in buckets.iter().enumerate() {
            let _ = writeln!(
                text,
                "{name}_bucket{{endpoint=\"/e{f}\",le=\"{le}\"}} {}",
                i * 10
            );
        }
        let _ = writeln!(text, "{name}_sum{{endpoint=\"/e{f}\"}} 12.5");
        let _ = writeln!(text, "{name}_count{{endpoint=\"/e{f}\"}} 110");
        let _ = writeln!(
            text,
            "app_requests_total{{endpoint=\"/e{f}\",status=\"200\"}} {f}"
        );
    }
    text.push_str("# TYPE mlsdm_http_requests_total counter\nmlsdm_http_requests_total{method=\"GET\",endpoint=\"/health\",status=\"200\"} 5\n");
    text
}

fn main() {
    // The queries as the checks hold them, parsed once at load (as in a run).
    let queries: Vec<promql::Query> = checks::load(&[])
        .expect("built-in checks")
        .into_iter()
        .filter_map(|c| c.metrics().map(|m| m.query.clone()))
        .collect();
    println!(
        "{:>8} {:>12} {:>12} {:>10}",
        "series", "ingest", "evaluate", "bytes"
    );
    for series in [5_500, 11_000, 22_000, 44_000] {
        let text = page(series);
        let started = Instant::now();
        let mut store = Store::default();
        for (i, t) in [0.0, 15.0, 30.0].iter().enumerate() {
            store
                .add_scrape(&format!("pod-{i}"), *t, &text)
                .expect("valid exposition");
        }
        let ingest = started.elapsed();
        let started = Instant::now();
        for q in &queries {
            let _ = promql::eval(q.expr(), &store, 30.0);
        }
        let evaluate = started.elapsed();
        println!(
            "{series:>8} {:>10.1}ms {:>10.1}ms {:>10}",
            ingest.as_secs_f64() * 1000.0,
            evaluate.as_secs_f64() * 1000.0,
            text.len()
        );
    }
}
