//! The one redaction layer: every secret value the run learns (Secret data, credential literals
//! in manifests, the `--api-key-env` key) is registered here, and every byte the binary writes
//! (each report format, stdout, files, stderr) passes through [`text`] first.
//!
//! It is process-wide on purpose: a secret can reach an output through paths no caller foresees
//! (an API server's 403 body quoting an object, a service reflecting the Authorization header),
//! so redaction cannot depend on each call site remembering to do it.
//!
//! Each secret is also matched in the forms outputs give it: base64 (Secret data, basic auth),
//! JSON-escaped (the json, sarif reports) and HTML-escaped (the html report).

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

/// Registered secrets' total bytes past which the matcher is built as a contiguous NFA.
const LARGE_PATTERNS: usize = 64 * 1024;

/// What replaces a secret.
pub const MASK: &str = "<redacted>";

/// Shorter values are not registered: masking every "on" or "1" would garble reports while
/// protecting nothing a reader could not guess.
const MIN_LEN: usize = 4;

#[derive(Default)]
struct Registry {
    patterns: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    patterns: Vec::new(),
    matcher: None,
});

/// Registers a secret value; it and its encoded forms never appear in any output after this.
pub fn register(secret: &str) {
    let secret = secret.trim_matches(|c: char| c == '\n' || c == '\r');
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![
        secret.to_string(),
        b64.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ];
    // Inside a longer base64 text (`Bearer <key>` encoded, a key in a JSON blob): the secret
    // starts at any of three byte alignments, and the characters at either edge mix with its
    // neighbours. The characters that depend on the secret alone are matched at each alignment
    // (review 32g: a reflected `base64("Bearer " + key)` was printed whole).
    for engine in [b64, base64::engine::general_purpose::URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            let encoded = encoded.trim_end_matches('=');
            // Leading characters that carry the padding bytes' bits, and the last group, which
            // carries whatever follows the secret.
            // At least 12 characters: a shorter fragment of base64 would match ordinary text.
            let skip = [0, 2, 3][offset];
            if encoded.len() >= skip + 4 + 12 {
                forms.push(encoded[skip..encoded.len() - 4].to_string());
            }
        }
    }
    let json = serde_json::to_string(secret).unwrap_or_default();
    forms.push(json.trim_matches('"').to_string());
    // Percent-encoded, as a URL's user info or query carries it (a password in
    // `postgres://app:PASS@db`), as the common encoders write it: every byte but the unreserved
    // ones (RFC 3986), JavaScript's encodeURIComponent, Python's quote (keeps `/`), the WHATWG
    // user-info set; each also with `+` for a space. Upper-, lower- and mixed-case hex digits
    // (`%2F`, `%2f`, `%2f%3A`: all decode the same) are matched by the matcher ignoring ASCII case.
    for set in URL_ENCODINGS {
        let encoded = percent_encoding::utf8_percent_encode(secret, set).to_string();
        forms.push(encoded.replace("%20", "+"));
        forms.push(encoded);
    }
    forms.push(html_escape(secret));
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let before = reg.patterns.len();
    for f in forms {
        if f.len() >= MIN_LEN && !reg.patterns.contains(&f) {
            reg.patterns.push(f);
        }
    }
    if reg.patterns.len() != before {
        reg.matcher = None;
    }
}

/// What each common percent-encoder escapes (`register`).
const URL_ENCODINGS: [&percent_encoding::AsciiSet; 4] = [
    UNRESERVED,
    &UNRESERVED
        .remove(b'!')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'*'),
    &UNRESERVED.remove(b'/'),
    &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/')
        .add(b':')
        .add(b';')
        .add(b'=')
        .add(b'@')
        .add(b'[')
        .add(b'\\')
        .add(b']')
        .add(b'^')
        .add(b'|'),
];

/// Everything but RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` with every registered secret replaced by [`MASK`].
pub fn text(text: &str) -> Cow<'_, str> {
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if reg.patterns.is_empty() {
        return Cow::Borrowed(text);
    }
    let Some(m) = matcher(&mut reg) else {
        // Unreachable with valid patterns; never print unredacted text if it happens.
        return Cow::Owned(MASK.to_string());
    };
    if m.is_match(text) {
        Cow::Owned(m.replace_all(text, &vec![MASK; m.patterns_len()]))
    } else {
        Cow::Borrowed(text)
    }
}

/// A writer that masks every registered secret in the bytes written through it, exactly as
/// [`text`] masks a whole string, without holding the whole output: a report streamed to its
/// output (tens of MB at 5,000 objects) is redacted as it goes. Call [`Writer::finish`] at the
/// end; bytes it has not written yet are held back until then.
///
/// Bytes written while no secret is registered pass straight through: a secret registered
/// later does not reach back to them. Its one user, the JSON report (`write_json` in main.rs),
/// writes after the audit has finished, when every source that registers secrets (the
/// kubeconfig, exec plugins, the manifests and the cluster's objects, the plan's URLs) has
/// been read: a writer used before that would have to register first.
pub struct Writer<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

/// How much a [`Writer`] gathers before it masks and writes.
const CHUNK: usize = 64 * 1024;

impl<W: std::io::Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    /// Masks and writes what is pending, flushes, and gives the inner writer back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.drain(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Writes the pending bytes, masked, except (unless `all`) the last ones a secret could
    /// still be continuing in. A match that starts before that tail ends inside what is pending
    /// (no pattern is longer than the tail plus one), so leftmost-longest matching over the
    /// pieces finds what it finds over the whole text.
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        let (matcher, longest) = {
            let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
            if reg.patterns.is_empty() {
                (None, 0)
            } else {
                let longest = reg.patterns.iter().map(String::len).max().unwrap_or(0);
                (Some(matcher(&mut reg)), longest)
            }
        };
        let Some(matcher) = matcher else {
            self.inner.write_all(&self.pending)?;
            self.pending.clear();
            return Ok(());
        };
        let Some(matcher) = matcher else {
            // Unreachable with valid patterns; never write unredacted bytes if it happens.
            self.pending.clear();
            return self.inner.write_all(MASK.as_bytes());
        };
        let keep = if all { 0 } else { longest.saturating_sub(1) };
        let limit = self.pending.len().saturating_sub(keep);
        let mut written = 0;
        for m in matcher.find_iter(&self.pending) {
            if m.start() >= limit {
                break;
            }
            self.inner.write_all(&self.pending[written..m.start()])?;
            self.inner.write_all(MASK.as_bytes())?;
            written = m.end();
        }
        let upto = written.max(limit);
        self.inner.write_all(&self.pending[written..upto])?;
        self.pending.drain(..upto);
        Ok(())
    }
}

impl<W: std::io::Write> std::io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // With no secret registered and nothing held back, the bytes go straight through: a
        // large report was otherwise copied once more, 64 KB at a time, for nothing to mask.
        if self.pending.is_empty() && nothing_registered() {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    /// Flushes what can be written: the tail a secret could continue in waits for more bytes
    /// or [`Writer::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        self.drain(false)?;
        self.inner.flush()
    }
}

/// The registry's matcher, built when a pattern was added since the last one; `None` only if
/// the patterns cannot be compiled.
fn matcher(reg: &mut Registry) -> Option<AhoCorasick> {
    if reg.matcher.is_none() {
        // Leftmost-longest: a secret that contains another is masked whole. ASCII case is
        // ignored: a percent-encoded form may write its hex digits in any case, each escape its
        // own (2^n spellings of one secret); masking a secret's case variants too errs toward
        // hiding, never toward printing.
        // A DFA (what the builder picks for few patterns) grows with the patterns' bytes times
        // the alphabet: a 600 KB credential-named value took gigabytes. Past a size, the
        // contiguous NFA, linear in the patterns' bytes.
        let bytes: usize = reg.patterns.iter().map(String::len).sum();
        reg.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .kind((bytes > LARGE_PATTERNS).then_some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(&reg.patterns)
            .ok();
    }
    reg.matcher.clone()
}

/// Every string of `v` masked (its keys are the program's own): for JSON built from input, such
/// as `check -o json`'s diagnostics, which escaping would otherwise carry past the output pass
/// (a secret holding `"` printed as `\\\"`, which no registered pattern matches).
pub fn value(v: &mut serde_json::Value) {
    strings(v, &|_| false);
}

/// Masks the strings of `v`, but those `keep` keeps.
fn strings(v: &mut serde_json::Value, keep: &dyn Fn(&str) -> bool) {
    match v {
        serde_json::Value::String(s) if keep(s) => {}
        serde_json::Value::String(s) => {
            if let Cow::Owned(masked) = text(s) {
                *s = masked;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| strings(x, keep)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| strings(x, keep)),
        _ => {}
    }
}

/// Whether no secret is registered (yet): there is nothing to mask.
pub fn nothing_registered() -> bool {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .patterns
        .is_empty()
}

/// Every string of a serializable model (a report) with the registered secrets masked, before
/// any renderer wraps, escapes or truncates it (after which the output pass could miss them).
///
/// When masking every string leaves the model unreadable (a registered secret inside one of its
/// enum values: a Secret holding `LOG_LEVEL=info` against the severity `info`), strings that
/// are one short lowercase word (`pass`, `info`, `kubernetes`, `no-data`) are left to the output
/// pass and the rest masked again: no renderer wraps or escapes such a word. Returning the
/// unmasked model there, as this did, printed every secret of the report.
pub fn model<T: serde::Serialize + serde::de::DeserializeOwned>(model: T) -> T {
    fn is_word(s: &str) -> bool {
        s.len() <= 16
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    }
    let walk = |v: &mut serde_json::Value, keep_words: bool| {
        strings(v, &|s| keep_words && is_word(s));
    };
    if nothing_registered() {
        return model;
    }
    let masked = |keep_words: bool| {
        let mut value = serde_json::to_value(&model).ok()?;
        walk(&mut value, keep_words);
        serde_json::from_value(value).ok()
    };
    // A typed string other than an enum value holding a secret (none in the report model
    // today) reads back in neither pass: the output pass still masks what is printed.
    masked(false).or_else(|| masked(true)).unwrap_or(model)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret that is part of an enum value (`info`, `kubernetes`) leaves the enum readable
    /// and the other strings masked; the whole model used to come back unmasked.
    #[test]
    fn a_secret_inside_an_enum_value_masks_the_rest() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Source {
            // An unusual word: the registry is the test binary's, shared by every test.
            Qzkubernetesq,
        }
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Result {
            source: Source,
            message: String,
        }
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Plain {
            message: String,
        }
        register("zkubernetesq");
        register("m-secret-in-msg");
        let masked = model(Result {
            source: Source::Qzkubernetesq,
            message: "holds m-secret-in-msg and qzkubernetesq".into(),
        });
        assert_eq!(masked.source, Source::Qzkubernetesq);
        assert!(
            !masked.message.contains("m-secret-in-msg"),
            "{}",
            masked.message
        );
        assert!(
            !masked.message.contains("zkubernetesq"),
            "{}",
            masked.message
        );
        // Without a clash, a one-word string is masked like any other.
        register("qzonewordq");
        let masked = model(Plain {
            message: "qzonewordq".into(),
        });
        assert_eq!(masked.message, MASK);
    }

    #[test]
    fn masks_every_form() {
        register("s3cr3t-\"quoted\"-value");
        let b64 = base64::engine::general_purpose::STANDARD.encode("s3cr3t-\"quoted\"-value");
        let out = text(&format!(
            "plain s3cr3t-\"quoted\"-value json s3cr3t-\\\"quoted\\\"-value b64 {b64} html s3cr3t-&quot;quoted&quot;-value"
        ))
        .into_owned();
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(!out.contains(&b64), "{out}");
        assert_eq!(out.matches(MASK).count(), 4, "{out}");
    }

    /// Review 32g: a key inside a longer base64 text (`base64("Bearer " + key)`, reflected by a
    /// proxy) starts at another byte alignment, and was printed whole.
    #[test]
    fn masks_a_secret_inside_longer_base64() {
        let key = "k3y-SECRET-value-123-alignment";
        register(key);
        for prefix in ["", "B", "Be", "Bearer ", "Bearer  "] {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{key} tail"));
            let out = text(&format!("flag {encoded} end")).into_owned();
            assert!(out.contains(MASK), "{prefix:?}: {out}");
            assert!(!out.contains(&encoded), "{prefix:?}: {out}");
        }
    }

    /// A password in a connection URL is written percent-encoded: it was printed as it was.
    #[test]
    fn masks_the_percent_encoded_forms() {
        register("Sup3r@Secret/Pass:word q");
        register("Pa!ss(1)*x");
        let out = text("a=Pa!ss(1)*x&b=Pa%21ss%281%29%2Ax").into_owned();
        assert!(!out.contains("Pa"), "{out}");
        for form in [
            "postgres://app:Sup3r%40Secret%2FPass%3Aword%20q@db/x",
            "postgres://app:Sup3r%40Secret%2fPass%3aword%20q@db/x",
            "?password=Sup3r%40Secret%2FPass%3Aword+q&x=1",
            "?password=Sup3r%40Secret/Pass%3Aword%20q",
            // Mixed case, escape by escape: all decode the same.
            "postgres://app:Sup3r%40Secret%2fPass%3Aword%20q@db/x",
            "postgres://app:Sup3r%40Secret%2FPass%3aword+q@db/x",
        ] {
            let out = text(form).into_owned();
            assert!(!out.contains("Sup3r"), "{out}");
        }
    }

    #[test]
    fn the_writer_masks_as_text_does_across_chunk_boundaries() {
        use std::io::Write as _;
        register("w-secret-Zq9");
        register("w-secret-Zq9-longer-one");
        let mut whole = String::new();
        for i in 0..40_000 {
            whole.push_str(match i % 7 {
                0 => "w-secret-Zq9 ",
                1 => "w-secret-Zq9-longer-one,",
                2 => "w-secret-Zq",
                _ => "filler text ",
            });
        }
        let expected = text(&whole).into_owned();
        // Written in pieces of every size, so that secrets straddle every boundary.
        for piece in [1, 7, 13, 4096, CHUNK - 3, CHUNK + 5] {
            let mut w = Writer::new(Vec::new());
            for part in whole.as_bytes().chunks(piece) {
                w.write_all(part).unwrap();
            }
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert!(out == expected, "pieces of {piece} bytes");
            assert!(!out.contains("w-secret-Zq9"));
        }
    }

    #[test]
    fn short_values_are_not_masked() {
        register("on");
        assert_eq!(text("turn it on"), "turn it on");
    }
}
