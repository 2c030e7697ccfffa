//! What a watch prints: JSON lines events or a status block (redrawn in place on a terminal).

use super::schedule::{now_epoch, rfc3339};
use super::{Criterion, Watcher};
use serde_json::{Value, json};
use std::fmt::Write as _;

impl Watcher<'_> {
    pub(super) fn emit(&mut self, event: &Value) {
        if self.plan.jsonl {
            (self.print)(&format!("{event}\n"));
        }
    }

    pub(super) fn say(&mut self, line: &str) {
        if !self.plan.jsonl {
            self.drawn = 0;
            (self.print)(&format!("{line}\n"));
        }
    }

    pub(super) fn next_checkpoint(&self, now: f64) -> Option<(String, f64)> {
        self.plan
            .checkpoints
            .iter()
            .map(|(l, s)| (l.clone(), self.plan.since + *s as f64 - now))
            .find(|(_, left)| *left > 0.0)
    }

    pub(super) fn show(&mut self, criteria: &[Criterion], next: Option<(String, f64)>) {
        let time = rfc3339(now_epoch());
        if self.plan.jsonl {
            for c in criteria {
                let event = json!({
                    "event": "evaluation",
                    "time": time,
                    "check": c.check.id,
                    "status": c.status,
                    "message": c.message,
                    "threshold": c.threshold(),
                    "heldSeconds": c.held.round(),
                    "undecidedSeconds": c.undecided.as_ref().map_or(0.0, |(g, _, _)| g.round()),
                    "windowSeconds": c.window,
                    "value": c.value,
                    "objects": c.results.iter().filter_map(|r| r.object.as_ref().map(ToString::to_string)).collect::<Vec<_>>(),
                    "nextCheckpoint": next.as_ref().map(|(l, _)| l),
                    "nextCheckpointInSeconds": next.as_ref().map(|(_, s)| s.round()),
                });
                (self.print)(&format!("{event}\n"));
            }
            return;
        }
        let mut lines: Vec<String> = criteria
            .iter()
            .map(|c| {
                format!(
                    "{:<8} {:<30} {}held {:>5.0}s/{}s  threshold {}  {}",
                    c.status.to_string(),
                    c.check.id,
                    c.value
                        .map_or_else(String::new, |v| format!("value {v:.4}  ")),
                    c.held,
                    c.window,
                    c.threshold(),
                    crate::report::printable(first_line(&c.message), true)
                )
            })
            .collect();
        lines.push(match next {
            Some((l, s)) => format!("{time}  next checkpoint {l} in {s:.0}s"),
            None => format!("{time}  no checkpoint left"),
        });
        // On a terminal the block is redrawn in place: one live line per criterion.
        let mut text = String::new();
        if self.drawn > 0 && self.plan.redraw {
            let _ = write!(text, "\x1b[{}F\x1b[J", self.drawn);
        }
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        (self.print)(&text);
        self.drawn = lines.len();
    }
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
