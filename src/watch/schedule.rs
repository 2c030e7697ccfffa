//! Times and durations of a watch: `--interval`, `--until`, checkpoints, `--since`, and the
//! rollout time a watch starts from.

use crate::UsageError;
use crate::checks;

pub(super) fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[allow(clippy::cast_possible_truncation)] // a Unix time in seconds fits an i64
pub(super) fn rfc3339(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn duration(flag: &str, value: &str) -> Result<u64, UsageError> {
    checks::parse_duration(value.trim()).ok_or_else(|| {
        UsageError::Invalid(format!(
            "{flag} {value:?}: expected a duration like 10s, 30m or 1h"
        ))
    })
}

/// The longest `--interval`, `--until` or checkpoint a watch accepts: a watch is a rollout gate
/// of hours or days, and beyond this a typo (or `u64::MAX`) would overflow the sleep.
pub(super) const MAX_SCHEDULE: u64 = 30 * 24 * 3600;

/// A schedule duration, refused beyond `MAX_SCHEDULE` naming the flag.
pub(super) fn schedule(flag: &str, value: &str) -> Result<u64, UsageError> {
    let secs = duration(flag, value)?;
    if secs > MAX_SCHEDULE {
        return Err(UsageError::Invalid(format!(
            "{flag} {value:?}: longer than a watch can run (at most 30d)"
        )));
    }
    Ok(secs)
}

/// A `--since` in the future is refused: the watch would idle until then, and every window
/// would be clamped to nothing, so no criterion could ever fire.
pub(super) fn future_since(since: f64, now: f64) -> Result<f64, UsageError> {
    if since > now + 1.0 {
        return Err(UsageError::Invalid(format!(
            "--since {}: the rollout time is in the future (now is {})",
            rfc3339(since),
            rfc3339(now)
        )));
    }
    Ok(since)
}

/// Why a rollout time read from the cluster cannot be watched: it is so old the watch would end
/// at its first tick, deciding every checkpoint on one snapshot. Only `--since` (a deliberate
/// time) may start a watch after its own end.
pub(super) fn stale_rollout(since: f64, source: &str, until: f64, start: f64) -> Option<String> {
    (until < start).then(|| {
        format!(
            "the rollout time {} ({source}) is older than the end of the watch ({}): nothing would be watched. \
             If that is this release's rollout, give --since explicitly; a deploy that made no new ReplicaSet, \
             or another MLSDM Deployment, reads as an old rollout",
            rfc3339(since),
            rfc3339(until)
        )
    })
}

/// `--since`: an RFC 3339 time, or a duration before now.
pub(super) fn parse_since(value: &str, now: f64) -> Result<f64, UsageError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp() as f64);
    }
    checks::parse_duration(value)
        .map(|d| now - d as f64)
        .ok_or_else(|| {
            UsageError::Invalid(format!(
                "--since {value:?}: expected an RFC 3339 time (2026-11-29T05:00:00Z) or a duration ago (15m)"
            ))
        })
}

/// Whole seconds from the rollout to `now`, at least 1.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // max(1.0): positive
pub(super) fn since_rollout(now: f64, since: f64) -> u64 {
    (now - since).max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_since_is_refused() {
        assert!(future_since(2000.0, 1000.0).is_err());
        assert!(future_since(900.0, 1000.0).is_ok());
    }

    #[test]
    fn a_rollout_older_than_the_watch_is_stale() {
        // Rolled out a day ago, last checkpoint 1h: the watch would end at its first tick.
        let why = stale_rollout(
            0.0,
            "the creation of Deployment a/b's current ReplicaSet",
            3600.0,
            86_400.0,
        )
        .expect("stale");
        assert!(why.contains("--since"), "{why}");
        assert!(stale_rollout(86_000.0, "x", 86_000.0 + 3600.0, 86_400.0).is_none());
    }

    #[test]
    fn schedule_durations_beyond_30_days_are_refused_naming_the_flag() {
        let e = schedule("--interval", "18446744073709551615s").unwrap_err();
        assert!(e.to_string().contains("--interval"), "{e}");
        assert!(schedule("--until", "30d").is_ok());
        assert!(schedule("--until", "31d").is_err());
    }

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        assert!((parse_since("2026-11-29T05:00:00Z", 0.0).unwrap() - 1_795_928_400.0).abs() < 1e-9);
        assert!((parse_since("10m", 1000.0).unwrap() - 400.0).abs() < 1e-9);
        assert!(parse_since("yesterday", 0.0).is_err());
    }
}
