//! The engine's stages at scale (issue 12): YAML loading, building the facts and every object's
//! relations, evaluating the whole built-in catalog (per check x object), and quantity parsing,
//! on the generated release of scripts/bench.sh. The straightforward path (relations by scan,
//! values copied per binding) runs beside the indexed one at the smaller sizes, for the ratio.
//! Prints wall times; run with `cargo bench --bench engine`.

#![allow(clippy::print_stdout)] // a bench reports on stdout

use mlsdm_audit::checks::{self, Source};
use mlsdm_audit::engine;
use mlsdm_audit::k8s::quantity::Quantity;
use mlsdm_audit::sources::Facts;
use mlsdm_audit::sources::manifests::{Input, load_inputs};
use mlsdm_audit_testservers::synthetic::manifest_files;
use std::collections::BTreeSet;
use std::time::Instant;

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let started = Instant::now();
    let checks = checks::load(&[]).expect("built-in checks");
    println!(
        "compiling the built-in catalog ({} checks): {:.1} ms",
        checks.len(),
        ms(started.elapsed())
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>10} {:>14} {:>16}",
        "objects", "load yaml", "relations", "evaluate", "results", "per result", "straightforward"
    );
    for objects in [1_000, 5_000, 10_000] {
        let inputs: Vec<Input> = manifest_files(objects)
            .into_iter()
            .map(|(name, text)| Input::Rendered { name, text })
            .collect();
        let started = Instant::now();
        let loaded = load_inputs(&inputs).expect("generated manifests load");
        let load = started.elapsed();
        let build = |straightforward: bool| {
            let mut facts = Facts::new(
                loaded.objects.clone(),
                BTreeSet::from([Source::Kubernetes]),
                None,
                "the generated release",
            );
            facts.straightforward = straightforward;
            facts
        };
        let facts = build(false);
        // `related` of every object, as the evaluation builds it (it builds them again: the
        // evaluation keeps an object's values only while it evaluates it and its neighbours).
        let started = Instant::now();
        let scope = mlsdm_audit::facts::ValScope::default();
        for i in 0..facts.objects.len() {
            let _ = facts.related_val(i, &scope, &|_| true);
        }
        drop(scope);
        let relations = started.elapsed();
        let started = Instant::now();
        let results = engine::evaluate(&checks, &facts).len();
        let evaluate = started.elapsed();
        // The straightforward path grows faster than the input: only where it stays short.
        let straightforward = if objects <= 5_000 {
            let facts = build(true);
            let started = Instant::now();
            let _ = engine::evaluate(&checks, &facts);
            format!("{:.0} ms", ms(started.elapsed()))
        } else {
            "-".to_string()
        };
        println!(
            "{objects:>8} {:>10.0}ms {:>10.0}ms {:>10.0}ms {results:>10} {:>12.1}us {straightforward:>16}",
            ms(load),
            ms(relations),
            ms(evaluate),
            evaluate.as_secs_f64() * 1e6 / results.max(1) as f64,
        );
    }
    let quantities = [
        "250m", "1", "2Gi", "512Mi", "1.5", "100k", "1e3", "0.1", "64Mi", "3",
    ];
    let started = Instant::now();
    let mut parsed = 0;
    for _ in 0..100_000 {
        for q in quantities {
            parsed += usize::from(Quantity::parse(q).is_ok());
        }
    }
    println!(
        "quantity parsing: {:.0} ns per quantity ({parsed} parsed)",
        started.elapsed().as_secs_f64() * 1e9 / parsed.max(1) as f64
    );
}
