//! How serde-saphyr reads a plain (unquoted) YAML scalar, for the cases where that is certain:
//! the rules the manifests' fast YAML path (`manifest_yaml.rs`) and `build.rs` (the built-in
//! catalog as JSON) share. `build.rs` includes this file by path, so it uses std, granit-parser
//! and serde_json only.

use granit_parser::ScalarStyle;
use serde_json::Value;

/// Whether a scalar in a key's place is the key its text spells, to serde-saphyr and to
/// serde_json as the reference runs them. Not: a plain null-like key (refused), `<<` (a merge
/// key), a YAML 1.1 boolean but `true` and `false` (kubectl reads `y` as `"true"`), a plain key that spells a number in more than one way (serde-saphyr's duplicate check
/// compares integer keys by value: `1` and `+1`, `16` and `0x10`, `10` and `1_0` are the same
/// key to it, an error, and two keys here), and serde_json's private marker keys (with its
/// `raw_value` or `arbitrary_precision` feature, a map whose first key is one is read as
/// something else).
pub(crate) fn plain_key(key: &str, style: ScalarStyle) -> bool {
    if key.starts_with("$serde_json::private::") {
        return false;
    }
    if style != ScalarStyle::Plain {
        return true;
    }
    if is_null(key) || key == "<<" {
        return false;
    }
    // YAML 1.1's booleans other than `true` and `false`: kubectl (go-yaml v2) reads the key `y`
    // as `"true"`, this reader as `"y"`; the reference path refuses them
    // (`kubectl_yaml::read_otherwise`).
    if matches!(
        key,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "True"
            | "TRUE"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
            | "False"
            | "FALSE"
    ) {
        return false;
    }
    // After one sign, a digit or a point starts a number's spelling: only the one decimal
    // spelling of a natural number (`0`, `8080`), which no other key text equals, is taken.
    let unsigned = key.strip_prefix(['+', '-']).unwrap_or(key).as_bytes();
    match unsigned.first() {
        Some(b'0'..=b'9' | b'.') => {
            unsigned.len() == key.len()
                && unsigned.iter().all(u8::is_ascii_digit)
                && (unsigned[0] != b'0' || unsigned.len() == 1)
        }
        _ => true,
    }
}

/// serde-saphyr's null spellings for a plain scalar (`scalar_is_nullish`).
pub(crate) fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// A plain scalar in a value's place, as serde-saphyr reads it into `Value`, or `None` when it is
/// not sure to be what the rules below say. serde-saphyr tries, in order: null, a YAML 1.1
/// boolean (`y`, `on`, `False`...), integers (signs, `0x`, `0o`, `0b`, underscores), floats
/// (Rust's and YAML's spellings, `inf` and `nan` among them), else a string. Here: the null
/// spellings; exactly `true` and `false`; decimal integers without a leading zero that fit
/// 64 bits; and strings that none of the numeric rules can read: text that does not start (after
/// one sign) with a digit or a point, dotted versions, and text holding a character no number is
/// spelled with. Everything else is the reference's to read.
pub(crate) fn plain(s: &str) -> Option<Value> {
    if is_null(s) {
        return Some(Value::Null);
    }
    match s {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    let bytes = s.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if digits.len() > 1 && digits[0] == b'0' {
            return None;
        }
        return if bytes[0] == b'-' {
            // `-0` is 0 to an integer parser and -0.0 to nothing here: leave it.
            (digits != b"0").then(|| s.parse::<i64>().ok().map(Value::from))?
        } else {
            s.parse::<u64>().ok().map(Value::from)
        };
    }
    let word = |w: &str| s.eq_ignore_ascii_case(w);
    if ["y", "yes", "on", "n", "no", "off", "true", "false"]
        .iter()
        .any(|w| word(w))
    {
        return None;
    }
    // One sign, then: a radix prefix, or a word of Rust's float parser (`inf`, `infinity`,
    // `nan`) or YAML's (`.inf`, `.nan`), is the reference's to read.
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let rest = unsigned.as_bytes();
    let radix = rest.len() >= 2 && rest[0] == b'0' && b"xXoObB".contains(&rest[1]);
    if radix
        || ["inf", "infinity", "nan", ".inf", ".nan"]
            .iter()
            .any(|w| unsigned.eq_ignore_ascii_case(w))
    {
        return None;
    }
    // Otherwise a number starts with a digit or a point: text starting with anything else (a
    // letter, `/`, `*`, `--`) is a string.
    if !rest
        .first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
    {
        return Some(Value::String(s.to_owned()));
    }
    // Dotted versions and addresses (`1.2.0`, `10.0.0.1`): no number has two points.
    if rest.iter().filter(|b| **b == b'.').nth(1).is_some()
        && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.')
    {
        return Some(Value::String(s.to_owned()));
    }
    // Decimal and float spellings (with or without a radix, which was ruled out above) are made
    // of digits, points, underscores, sexagesimal colons, an exponent and its sign: any other
    // character (`m` in `100m`, `G` in `16Gi`, `h` in `1h`), or a sign anywhere but after an
    // exponent, makes a string. (serde-saphyr can also be set to read angles, `deg(90)`, `pi`:
    // the manifests' options leave that off, as its default is.)
    let mut previous = 0u8;
    for &b in rest {
        let numeric = b.is_ascii_digit()
            || b"._:eE".contains(&b)
            || (b"+-".contains(&b) && b"eE".contains(&previous));
        if !numeric {
            return Some(Value::String(s.to_owned()));
        }
        previous = b;
    }
    None
}
