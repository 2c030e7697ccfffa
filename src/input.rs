//! Bounded reads of the files and streams a user hands the tool (manifests, stdin, check files,
//! waivers, attestations, reports): an endless stdin, a symlink to `/dev/zero` or a huge file
//! ends with an error naming the cap, never with the process running out of memory.
//!
//! The cap is process-wide (set once from `--max-input-size`) because every reader must honour
//! it, and threading one number through each loader would only add places to forget it.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// 256 MiB: a `kubectl get -A -o yaml` of a 50,000-object cluster is well under this.
pub const DEFAULT_CAP: u64 = 256 << 20;

static CAP: AtomicU64 = AtomicU64::new(DEFAULT_CAP);

/// Sets the largest input read from one file or stream.
pub fn set_cap(bytes: u64) {
    CAP.store(bytes, Ordering::Relaxed);
}

pub fn cap() -> u64 {
    CAP.load(Ordering::Relaxed)
}

/// Sets the cap from `--max-input-size` (`check`'s, and `verify`'s for the files it rereads).
pub fn set_cap_from_flag(size: &str) -> Result<(), String> {
    let bytes = parse_size(size).ok_or_else(|| {
        format!("--max-input-size {size:?}: expected a size like 512Mi, 2Gi or 100000000")
    })?;
    set_cap(bytes);
    Ok(())
}

/// Parses `--max-input-size`: bytes, or with a suffix Ki, Mi, Gi (or K, M, G: powers of 1000).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_end_matches('B') {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b > 0)
}

/// Human form of a byte count, for messages.
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads at most the cap from `reader`; the error is a sentence without the name of the source.
pub fn read_capped(reader: impl Read) -> Result<String, String> {
    let cap = cap();
    let mut buf = Vec::new();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > cap {
        return Err(format!(
            "larger than the {} input cap (--max-input-size raises it)",
            human(cap)
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads a file the user named, within the cap.
pub fn read_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    read_capped(file)
}

/// Refuses `path` when another user could have written it ([`untrusted`]): `what` names the
/// file ("the waivers file") and `power` what it can do ("it waives failures").
pub fn refuse_untrusted(path: &Path, what: &str, power: &str) -> Result<(), String> {
    match std::fs::metadata(path).ok().as_ref().and_then(untrusted) {
        Some(why) => Err(format!(
            "refusing {what}: {why} ({power}; fix its owner or mode)"
        )),
        None => Ok(()),
    }
}

/// Why a file that decides what the gate accepts (the config, a waivers or attestations file)
/// may not be trusted: another user could have written it. None when it is ours (or root's)
/// and only we may write it.
pub fn untrusted(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    untrusted_reason(meta.uid(), meta.mode(), rustix::process::geteuid().as_raw())
}

pub(crate) fn untrusted_reason(owner: u32, mode: u32, me: u32) -> Option<String> {
    if owner != me && owner != 0 {
        return Some(format!(
            "it is owned by uid {owner}, not by you (uid {me}) or root"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "group or others may write it (mode {:o})",
            mode & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("256Mi"), Some(256 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("5M"), Some(5_000_000));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("5X"), None);
        assert_eq!(parse_size("Mi"), None);
        assert_eq!(human(256 << 20), "256 MiB");
    }

    #[test]
    fn endless_input_stops_at_the_cap() {
        let e = read_capped(std::io::repeat(b'a')).unwrap_err();
        assert!(e.starts_with("larger than the 256 MiB input cap"), "{e}");
    }
}
