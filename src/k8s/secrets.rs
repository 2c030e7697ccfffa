//! What looks like a credential, and the summaries that replace Secret values at ingestion, so
//! that nothing after `Object::new` can see a secret value.

use super::Object;
use serde_json::{Map, Value, json};

/// Key names that may hold credentials, broadly (any name that mentions one: `max_tokens` too):
/// what masking registers, where masking a harmless value costs nothing. Judging a name is
/// [`names_a_credential`].
pub fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '.'], "_");
    [
        "api_key",
        "apikey",
        "token",
        "password",
        "passwd",
        "secret",
        "credential",
        "private_key",
        "access_key",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// The words of a name: split at `_`, `-`, `.`, spaces and camelCase (`apiKey`, `APIKey`),
/// lowercased.
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let boundary = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(char::is_ascii_lowercase))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Whether a variable or key names a credential: its last word is one (`GITHUB_TOKEN`,
/// `client_secret`, `DB_PASSWORD2`, `ADMIN_PASSWORDS`, `PGPASSWORD`, `apiKey`, `OPENAI_API_KEY`),
/// or the word before a qualifier (`SECRET_KEY_BASE`, `API_KEY_PROD`). A name where the
/// credential is not last names something about one (`TOKEN_URL`, `PASSWORD_FILE`,
/// `SIGNING_KEY_ID`, `password.encoder`, `ACCESS_TOKEN_LIFETIME`, `api_key_required`) or only
/// contains one (`TOKENIZER_MODEL`, `max_tokens`); `existing_secret` names a Secret. What the
/// checks judge by (`isCredentialName`); a substring match failed releases on `TOKENIZER_MODEL`.
pub fn names_a_credential(name: &str) -> bool {
    const PAIRS: &[(&str, &str)] = &[
        ("api", "key"),
        ("api", "keys"),
        ("private", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        // A provider's key is its API key (`AZURE_OPENAI_KEY`, `COHERE_KEY`); New Relic's
        // license and insert keys are too. Other `*_KEY` names (`SORT_KEY`, `CACHE_KEY`) are
        // judged with their value ([`is_credential_entry`]).
        ("openai", "key"),
        ("cohere", "key"),
        ("anthropic", "key"),
        ("mistral", "key"),
        ("groq", "key"),
        ("gemini", "key"),
        ("pinecone", "key"),
        ("huggingface", "key"),
        ("stripe", "key"),
        ("sendgrid", "key"),
        ("mailgun", "key"),
        ("datadog", "key"),
        ("license", "key"),
        ("insert", "key"),
        // `user:password` and Redis's AUTH password; other `*_AUTH` names are often a mode
        // (`SMTP_AUTH=login`, `REGISTRY_AUTH=htpasswd`), judged with their value.
        ("basic", "auth"),
        ("redis", "auth"),
        // Kafka's JAAS login line holds the SASL password (`KAFKA_SASL_JAAS_CONFIG`).
        ("jaas", "config"),
    ];
    // Before `pass`, a word that makes it something other than a password: nginx's
    // `proxy_pass` and its kin, a compiler's or renderer's pass, a count of passes.
    const NOT_PASSWORD_PASS: &[&str] = &[
        "proxy",
        "fastcgi",
        "uwsgi",
        "scgi",
        "grpc",
        "memcached",
        "first",
        "second",
        "third",
        "final",
        "last",
        "next",
        "single",
        "multi",
        "two",
        "one",
        "num",
        "max",
        "min",
        "skip",
        "render",
        "compile",
        "compiler",
        "lint",
        "test",
        "by",
        "boarding",
    ];
    // After the credential, a word that only says which one.
    const QUALIFIERS: &[&str] = &[
        "base",
        "value",
        "prod",
        "production",
        "staging",
        "dev",
        "primary",
        "secondary",
        "old",
        "new",
        "current",
        "previous",
        "v",
    ];
    const BEFORE: &[&str] = &["existing", "use", "create", "enable", "disable", "rotate"];
    let words: Vec<String> = name_words(name)
        .into_iter()
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if words.first().is_some_and(|w| BEFORE.contains(&w.as_str())) {
        return false;
    }
    let mut end = words.len();
    if end > 1 && QUALIFIERS.contains(&words[end - 1].as_str()) {
        end -= 1;
    }
    let Some(last) = words[..end].last() else {
        return false;
    };
    // `REDIS_PASS`, `RABBITMQ_DEFAULT_PASS`, `MYSQL_PWD`: a short word for a password after what
    // it is for (alone, `PASS` is a verdict and `PWD` the working directory).
    let short_password = matches!(last.as_str(), "pass" | "pwd")
        && end >= 2
        && !NOT_PASSWORD_PASS.contains(&words[end - 2].as_str());
    is_credential_word(last)
        || short_password
        || (end >= 2 && PAIRS.contains(&(words[end - 2].as_str(), last.as_str())))
}

/// Whether a variable or key with this value is a credential: its name is one
/// ([`names_a_credential`]), or the name leaves it to the value. A `*_KEY` holding a random
/// token is a key (`AZURE_OPENAI_KEY`, PagerDuty's `routing_key`: 32 hex digits, below
/// [`looks_like_credential`]'s entropy bar), where `SORT_KEY: created_at` is not; a `*_AUTH`
/// holding `user:password` or a token is one, where `SMTP_AUTH: login` is a mode.
pub fn is_credential_entry(name: &str, value: &str) -> bool {
    // Public halves: a reCAPTCHA site key, a VAPID or Stripe publishable key.
    const PUBLIC: &[&str] = &["public", "publishable", "site", "pub"];
    let v = value.trim();
    if names_a_credential(name) {
        return is_real_secret(v);
    }
    let words: Vec<String> = name_words(name)
        .into_iter()
        .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last) = words.last() else {
        return false;
    };
    if words.iter().any(|w| PUBLIC.contains(&w.as_str())) {
        return false;
    }
    match last.as_str() {
        "key" | "keys" => looks_random(v),
        "auth" => {
            looks_random(v)
                || v.split_once(':').is_some_and(|(user, password)| {
                    !user.is_empty()
                        && user
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c))
                        && !password.starts_with('/')
                        && is_real_secret(password)
                })
        }
        _ => false,
    }
}

/// A value that is random rather than a word or a name: hex of 32 digits or more, or a token
/// of 20 characters or more that mixes upper case, lower case and digits.
fn looks_random(v: &str) -> bool {
    let hex = v.len() >= 32
        && v.chars().all(|c| c.is_ascii_hexdigit())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_alphabetic());
    let mixed = v.len() >= 20
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+/=.".contains(c))
        && v.chars().any(|c| c.is_ascii_uppercase())
        && v.chars().any(|c| c.is_ascii_lowercase())
        && v.chars().any(|c| c.is_ascii_digit())
        && entropy(v) >= 3.5;
    // An object path (`embeddings/MiniLM-L6-v2/2024-06-01.npy`) mixes cases and digits too;
    // base64 has `/` but never `.`, and a JWT has `.` but never `/`.
    let path = v.contains('/') && v.contains('.');
    (hex || mixed) && !path && is_real_secret(v)
}

/// Whether a URL's query parameter names a credential. Query names are short, and words that
/// would say nothing as a variable's name are credentials here: `?pass=`, `?pwd=`, `?key=`,
/// `?auth=`, `?sig=` (a signed URL's signature), `?code=` (an Azure Functions key).
pub fn names_a_query_credential(name: &str) -> bool {
    const QUERY_NAMES: &[&str] = &[
        "pass",
        "pwd",
        "pw",
        "key",
        "auth",
        "sig",
        "signature",
        "code",
        "access_token",
        "token",
        "secret",
        "apikey",
        "api-key",
        "sas",
    ];
    let lower = name.to_ascii_lowercase();
    names_a_credential(name) || QUERY_NAMES.contains(&lower.as_str())
}

/// One word that is a credential: the word itself, its plural (not `tokens`: `max_tokens`
/// counts them), or run together with what it is for (`pgpassword`, `authtoken`, `jwtsecret`,
/// `htpasswd`).
fn is_credential_word(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "credential",
        "privatekey",
        "accesskey",
        "secretkey",
        // Redis's password directives (`requirepass`, `masterauth`).
        "requirepass",
        "masterauth",
    ];
    WORDS.iter().any(|c| {
        w == *c
            || (w.ends_with(c) && w.len() > c.len())
            || (*c != "token" && w.strip_suffix('s') == Some(c))
    })
}

/// Values that look like a credential: well-known key prefixes, private keys, or a long
/// high-entropy token with no spaces.
pub fn looks_like_credential(value: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_live_",
        "rk_live_",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "AKIA",
        "ASIA",
        "AIza",
        "hf_",
    ];
    let v = value.trim();
    if v.contains("PRIVATE KEY-----") {
        return true;
    }
    if PREFIXES.iter().any(|p| v.starts_with(p))
        && v.len() >= 16
        && !v.contains(char::is_whitespace)
    {
        return true;
    }
    // npm's tokens: `npm_` and 36 letters and digits (`npm_config_cache` is a variable's name).
    if let Some(body) = v.strip_prefix("npm_")
        && body.len() >= 30
        && body.chars().all(|c| c.is_ascii_alphanumeric())
        && body.chars().any(|c| c.is_ascii_digit())
    {
        return true;
    }
    (v.len() >= 32 && !v.contains(char::is_whitespace) && !v.contains('/') && entropy(v) >= 4.0)
        || !embedded_credentials(v).is_empty()
}

/// Credentials written inside a longer value, as the parts to mask: the password of a URL's
/// user info (`postgres://app:PASS@db:5432/app`), and the value of a `password = ...`,
/// `client_secret: ...` or `export API_TOKEN=...` line of a config file a ConfigMap holds.
/// Neither looks like a credential as a whole (a URL has `/`, a file has spaces), and both are
/// what a ConfigMap must not hold. References and placeholders (`$(DB_PASSWORD)`, `${X}`,
/// `<password>`, `changeme`), booleans and numbers are not credentials.
pub fn embedded_credentials(value: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ';'))
            .unwrap_or(after.len());
        let token = &after[..end];
        // The authority ends at the first `/`, `?` or `#` (a password holding one is written
        // percent-encoded in a URL): `oci://host:5000/img@sha256:...` has no user info.
        let authority = token.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = userinfo.split_once(':')
            && is_real_url_password(password)
        {
            found.push(password);
        }
        // A credential in the query (`jdbc:...?user=app&password=...`).
        if let Some((_, query)) = token.split_once('?') {
            for (k, v) in query
                .split('#')
                .next()
                .unwrap_or_default()
                .split('&')
                .filter_map(|pair| pair.split_once('='))
            {
                if names_a_query_credential(k) && is_real_secret(v) {
                    found.push(v);
                }
            }
        }
        rest = &after[end..];
    }
    query_credentials(value, &mut found);
    header_credentials(value, &mut found);
    xml_credentials(value, &mut found);
    json_credentials(value, &mut found);
    webhook_credentials(value, &mut found);
    for line in value.lines() {
        connection_string_passwords(line, &mut found);
        keyed_credentials(line, &mut found);
        spaced_credentials(line, &mut found);
        let line = line.trim_start();
        // A YAML list item (`- password: ...`) is a `key: value` line.
        let line = line.trim_start_matches(['-', ' ']);
        let line = line.strip_prefix("export ").unwrap_or(line);
        // `key = value`, `key=value`, or YAML's and JSON's `key: value` (a colon then a space, so
        // a URL's `http://` is not a key).
        let split = match (line.find('='), line.find(": ")) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        };
        let Some(at) = split else { continue };
        // `'password' => '...'` is read by `keyed_credentials`.
        if line[at..].starts_with("=>") {
            continue;
        }
        let key = line[..at].trim().trim_matches(|c| c == '"' || c == '\'');
        let sep = if line[at..].starts_with('=') { 1 } else { 2 };
        let mut v = line[at + sep..].trim();
        if let Some(hash) = v.find(" #") {
            v = v[..hash].trim_end();
        }
        // JSON: `"password": "...",`.
        let v = v.strip_suffix(',').unwrap_or(v).trim_end();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        // A value of words with `key=value` of their own (Kafka's
        // `sasl.jaas.config=... password="...";`, `password=%s token=%(t)s`) is not one secret:
        // its keys are read. Nor is a typed Python default (`token: Optional[str] = None`).
        let has_keys = v.split_whitespace().skip(1).any(|w| {
            w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            })
        }) || v.contains(" = ");
        if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && is_credential_entry(key, v)
            && !has_keys
        {
            found.push(v);
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// Credentials in a query string, with or without a scheme before it: a probe's
/// `/health/live?api_key=...`, a `jdbc:...?password=...`.
fn query_credentials<'a>(value: &'a str, found: &mut Vec<&'a str>) {
    for token in value.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`')) {
        let Some((_, query)) = token.split_once('?') else {
            continue;
        };
        for (k, v) in query
            .split('#')
            .next()
            .unwrap_or_default()
            .split(['&', ';'])
            .filter_map(|pair| pair.split_once('='))
        {
            // A value that is a credential whatever its name (`key=AIza...`, `auth=ghp_...`, a
            // long random signature): a probe's path is printed by the checks that judge it.
            if (names_a_query_credential(k) && is_real_secret(v))
                || (!v.contains('?') && looks_like_credential(v))
            {
                found.push(v);
            }
        }
    }
}

/// The token of an HTTP `Authorization` value written into a variable or file
/// (`OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic ...`, `Bearer eyJ...`, Dynatrace's
/// `Api-Token dt0c01...`): a scheme word, then the credential.
fn header_credentials<'a>(value: &'a str, found: &mut Vec<&'a str>) {
    // Within a line: the scheme word and its token are one header value. OTEL's header list
    // percent-encodes the space (`Authorization=Basic%20...`).
    for line in value.lines() {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace())
            .flat_map(|w| w.split("%20"))
            .filter(|w| !w.is_empty())
            .collect();
        header_token(&words, found);
    }
}

/// [`header_credentials`] over the words of one line.
fn header_token<'a>(words: &[&'a str], found: &mut Vec<&'a str>) {
    const SCHEMES: &[&str] = &["basic", "bearer", "token", "api-token", "apikey"];
    for pair in words.windows(2) {
        let scheme = pair[0]
            .rsplit(['=', ':', '"', '\'', ','])
            .next()
            .unwrap_or_default();
        let token = pair[1].trim_end_matches(['"', '\'', ',', ';', '}', ']']);
        let body = token.trim_end_matches('=');
        // A credential, not words: long enough, RFC 6750's b64token characters (`=` only as
        // padding), with a digit, and random-looking (`Token-Authentication`,
        // `OAuth2-AccessToken`, `JWT-from-Keycloak` are prose).
        if SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s))
            && token.len() >= 20
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
            && body.chars().any(|c| c.is_ascii_digit())
            && entropy(body) >= 3.5
            && is_real_secret(token)
        {
            found.push(token);
        }
    }
}

/// How far after its key a value is looked for: a secret is short, and the bound keeps a line
/// of unclosed quotes linear.
const KEYED_VALUE_MAX: usize = 1024;

/// Names whose value is a credential though their words do not say so: Honeycomb's header,
/// `.npmrc`'s `_auth`.
const CREDENTIAL_HEADERS: &[&str] = &["x-honeycomb-team", "_auth"];

/// One `key<separator>value` in a line, wherever it is: the value, and whether it was quoted.
struct KeyedValue<'a> {
    key: &'a str,
    value: &'a str,
    quoted: bool,
}

/// Every `key=value`, `key: value`, `key:value`, `"key" => "value"` and `'key', 'value'` of a
/// line, wherever it stands: the one reading of many formats' credentials (Kafka's
/// `sasl.jaas.config=... password="...";`, XML attributes, YAML flow and TOML inline tables,
/// `-Djavax.net.ssl.keyStorePassword=...`, `.npmrc`'s `//host/:_authToken=...`, PHP's
/// `define('DB_PASSWORD', '...')`, OTEL's `x-honeycomb-team=...`).
fn keyed_values(line: &str) -> Vec<KeyedValue<'_>> {
    let b = line.as_bytes();
    let key_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let skip_blanks = |mut j: usize| {
        while b.get(j).is_some_and(|c| matches!(c, b' ' | b'\t')) {
            j += 1;
        }
        j
    };
    // Where an unquoted value starting at each byte would end (the next terminator, or the
    // line's end): found once for the line, so a line of many keys and no terminator
    // (`a=a=a=...`, a megabyte of it) is read in linear time, not a window per key.
    let is_stop = |c: char| c.is_whitespace() || "\"'`;,)}]>&<([".contains(c);
    let mut next_stop = vec![line.len(); line.len() + 1];
    let mut stop = line.len();
    for (at, c) in line.char_indices().rev() {
        if is_stop(c) {
            stop = at;
        }
        next_stop[at] = stop;
    }
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !key_char(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && key_char(b[i]) {
            i += 1;
        }
        let before = start.checked_sub(1).map(|j| b[j]);
        // A URL's user name or path (`https://x-access-token:...@host`, `registry/secret:v1`)
        // is read as a URL.
        if matches!(before, Some(b'/' | b'@')) {
            continue;
        }
        let key_quoted = matches!(before, Some(q @ (b'"' | b'\'')) if b.get(i) == Some(&q));
        // A quoted key may be a subscript (`$cfg['password'] = '...'`).
        let subscript = key_quoted && b.get(i + 1) == Some(&b']');
        let mut j = skip_blanks(i + usize::from(key_quoted) + usize::from(subscript));
        let rest = &line[j..];
        let sep = if rest.starts_with("=>") {
            2
        } else if (rest.starts_with('=') && !rest.starts_with("=="))
            || (rest.starts_with(':') && !rest.starts_with("::") && !rest.starts_with(":/"))
            || (rest.starts_with(',') && key_quoted)
        {
            1
        } else {
            continue;
        };
        j = skip_blanks(j + sep);
        let near = &line[j..floor_char_boundary(line, j + KEYED_VALUE_MAX)];
        let (value, quoted) = if let Some(&q @ (b'"' | b'\'')) = near.as_bytes().first() {
            let Some(end) = near[1..].find(char::from(q)) else {
                continue;
            };
            (&near[1..=end], true)
        } else {
            // The value ends within the window, or at the line's end within it.
            let end = Some(next_stop[j] - j).filter(|&end| end <= near.len());
            let Some(end) = end else { continue };
            // Code: a call or an index (`token = get_token()`, `os.environ['X']`).
            if near[end..].starts_with(['(', '[']) {
                continue;
            }
            (&near[..end], false)
        };
        pairs.push(KeyedValue {
            key: &line[start..i],
            value,
            quoted,
        });
    }
    pairs
}

/// Whether a value found after its key, anywhere in a line, is a secret rather than code or a
/// word: a quoted one is not one word (`"String"`); an unquoted one starts with a letter or
/// digit, is not only letters (`SecretStr`, `Authentication`) and is not a member access
/// (`form.Password`, `__ENV.API_TOKEN`).
fn plausible_inline_secret(v: &str, quoted: bool) -> bool {
    let word = v.chars().all(|c| c.is_ascii_alphabetic())
        && (quoted || v.chars().skip(1).all(|c| c.is_ascii_lowercase()));
    // A member access or a Java class (`com.sun.security.auth.module.Krb5LoginModule`): a JWT
    // has digits, and upper case before its last dot.
    let segments: Vec<&str> = v.split('.').collect();
    let member_access = segments.len() > 1
        && segments.iter().all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        && (!v.contains(|c: char| c.is_ascii_digit())
            || segments[..segments.len() - 1]
                .iter()
                .all(|seg| seg.chars().all(|c| c.is_ascii_lowercase())));
    let unquoted_ok = v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !v.chars().all(|c| c.is_ascii_alphabetic());
    !word && !member_access && (quoted || unquoted_ok) && is_real_secret(v)
}

/// Credentials after their key anywhere in a line ([`keyed_values`]), and a value given under a
/// credential's name (`<add key="ApiKey" value="..."/>`, Spring's
/// `<property name="password" value="..."/>`, `{name: DB_PASSWORD, value: ...}`).
fn keyed_credentials<'a>(line: &'a str, found: &mut Vec<&'a str>) {
    let pairs = keyed_values(line);
    let mut named: Option<&str> = None;
    for p in &pairs {
        let key = p.key.to_ascii_lowercase();
        let v = p.value;
        if (CREDENTIAL_HEADERS.contains(&key.as_str()) || is_credential_entry(p.key, v))
            && plausible_inline_secret(v, p.quoted)
        {
            found.push(v);
        }
        match key.as_str() {
            "name" | "key" => named = Some(v),
            "value" => {
                if let Some(name) = named.take()
                    && is_credential_entry(name, v)
                    && plausible_inline_secret(v, p.quoted)
                {
                    found.push(v);
                }
            }
            _ => {}
        }
    }
}

/// Credentials after their key and blanks: a line of two words (redis.conf's
/// `requirepass ...`, fluent-bit's `HTTP_Passwd ...`, a `.properties` `key value`), Redis
/// Sentinel's `sentinel auth-pass <master> ...`, `.netrc`'s `machine h login u password ...`.
fn spaced_credentials<'a>(line: &'a str, found: &mut Vec<&'a str>) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let unquote = |w: &'a str| {
        w.strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(w)
    };
    match words.as_slice() {
        [key, v] => {
            let v = unquote(v);
            if key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                && is_credential_entry(key, v)
                && plausible_inline_secret(v, false)
            {
                found.push(v);
            }
        }
        ["sentinel", "auth-pass", _, v] => {
            let v = unquote(v);
            if is_real_secret(v) {
                found.push(v);
            }
        }
        ["machine" | "default", ..] => {
            for pair in words.windows(2) {
                if pair[0] == "password" && is_real_secret(pair[1]) {
                    found.push(pair[1]);
                }
            }
        }
        _ => {}
    }
}

/// The token of a Slack or Discord webhook URL (`https://hooks.slack.com/services/T../B../...`,
/// `https://discord.com/api/webhooks/<id>/...`): anyone holding it posts to the channel.
fn webhook_credentials<'a>(value: &'a str, found: &mut Vec<&'a str>) {
    const HOOKS: &[&str] = &[
        "hooks.slack.com/services/",
        "hooks.slack.com/workflows/",
        "hooks.slack.com/triggers/",
        "discord.com/api/webhooks/",
        "discordapp.com/api/webhooks/",
    ];
    for hook in HOOKS {
        let mut rest = value;
        while let Some(at) = rest.find(hook) {
            let after = &rest[at + hook.len()..];
            let end = after
                .find(|c: char| c.is_whitespace() || "\"'`,;?#<>)]}".contains(c))
                .unwrap_or(after.len());
            let path = after[..end].trim_end_matches('/');
            // The last segment is the token; the ones before it name the workspace and channel.
            if let Some((_, token)) = path.rsplit_once('/')
                && token.len() >= 16
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                && is_real_secret(token)
            {
                found.push(token);
            }
            rest = &after[end..];
        }
    }
}

/// How far after an opening tag its closing tag is looked for.
const XML_VALUE_MAX: usize = 4096;

/// The largest index at most `at` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `<password>...</password>` in an XML file a ConfigMap holds.
fn xml_credentials<'a>(value: &'a str, found: &mut Vec<&'a str>) {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let tag = &after[..close];
        let body = &after[close + 1..];
        rest = body;
        if tag.is_empty()
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            continue;
        }
        // The value is short: its closing tag is looked for nearby, not through the rest of
        // the text for every opening tag (quadratic on a 200 KB file of unclosed tags).
        let near = &body[..floor_char_boundary(body, XML_VALUE_MAX)];
        if names_a_credential(tag)
            && let Some(end) = near.find(&format!("</{tag}>"))
        {
            let v = body[..end].trim();
            if is_real_secret(v) {
                found.push(v);
            }
        }
    }
}

/// Credentials in a JSON document written on one line (Helm's `toJson`), where no line is a
/// `key: value`: every string under a credential-named key, at any depth.
fn json_credentials<'a>(value: &'a str, found: &mut Vec<&'a str>) {
    let v = value.trim();
    if !(v.starts_with('{') || v.starts_with('[')) {
        return;
    }
    let Ok(doc) = serde_json::from_str::<Value>(v) else {
        return;
    };
    let mut stack = vec![&doc];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(m) => {
                for (k, x) in m {
                    if let Value::String(text) = x {
                        // `"Authorization": "Bearer eyJ..."`: the token, as written.
                        let mut tokens = Vec::new();
                        header_credentials(text, &mut tokens);
                        for t in tokens {
                            if let Some(at) = value.find(t) {
                                found.push(&value[at..at + t.len()]);
                            }
                        }
                    }
                    if let Value::String(secret) = x
                        && names_a_credential(k)
                        && is_real_secret(secret)
                    {
                        // As written in the text (an escaped one is masked with its line).
                        let quoted = format!("\"{secret}\"");
                        found.push(
                            value
                                .find(&quoted)
                                .map_or(value, |at| &value[at + 1..at + 1 + secret.len()]),
                        );
                    }
                    stack.push(x);
                }
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
}

/// The password of a `;`-separated connection string: ADO.NET and ODBC
/// (`Server=db;User Id=sa;Password=...;`, `PWD={...}`) and the properties JDBC drivers take after
/// the URL (`jdbc:sqlserver://db:1433;user=sa;password=...`). The whole line is neither a URL
/// nor one `key=value`, so neither reading above sees the password. `Pwd` is a password only
/// here (as a variable, `PWD` is the working directory).
fn connection_string_passwords<'a>(line: &'a str, found: &mut Vec<&'a str>) {
    let mut pairs = Vec::new();
    let mut start = 0;
    for segment in line.split(';') {
        if let Some((k, v)) = segment.split_once('=') {
            // Where the value starts in the line: a braced one may run past this `;`.
            pairs.push((k, start + k.len() + 1, v));
        }
        start += segment.len() + 1;
    }
    if pairs.len() < 2 && !line.contains("jdbc:") {
        return;
    }
    for (k, at, v) in pairs {
        // Code assigns with spaces around `=` (`let password = form.Password;`, a k6 script's
        // `const TOKEN = __ENV.API_TOKEN;`); a connection string writes `Password=...`.
        if k.len() != k.trim_end().len() || v.starts_with(' ') {
            continue;
        }
        let k = k.trim();
        // A key is a word or two (`Password`, `User Id`), not code (`local token = f()`).
        if k.is_empty()
            || k.split(' ').count() > 2
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _-.".contains(c))
        {
            continue;
        }
        let v = v.trim();
        // ODBC braces a value that holds `;` (`PWD={a;b}`), ADO.NET quotes it
        // (`Password="a;b"`): up to the closing brace or quote, which must be there.
        let rest = line[at..].trim_start();
        let v = match rest.chars().next() {
            Some(open @ ('{' | '"' | '\'')) => {
                let close = if open == '{' { '}' } else { open };
                match rest[1..].split_once(close) {
                    Some((inner, _)) => inner,
                    None => continue,
                }
            }
            _ => v,
        };
        if (names_a_credential(k) || k.eq_ignore_ascii_case("pwd"))
            && !v.contains(['(', ')'])
            && is_real_secret(v)
        {
            found.push(v);
        }
    }
}

/// A value that is a secret rather than a reference to one, a placeholder, a flag or a number.
/// Also not: a path (`/etc/tls/tls.key`), code that reads one from the environment
/// (`os.environ['SECRET_KEY']`), or a lowercase name such as a Secret's (`secret: mlsdm-tls`,
/// `password: required`): a short lowercase password is missed, where these were critical
/// false alarms.
pub(super) fn is_real_secret(v: &str) -> bool {
    !is_lowercase_name(v) && is_secret_value(v)
}

/// Lowercase words, each letters then digits (`mlsdm-tls`, `db01`, `kid-2024-01`,
/// `client_secret_basic`): a name. Generated secrets mix them (`k9x2m4p7q8w3`, hex, UUIDs).
fn is_lowercase_name(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.split(['-', '.', '_']).all(|seg| {
            let letters = seg.trim_end_matches(|c: char| c.is_ascii_digit());
            letters.chars().all(|c| c.is_ascii_lowercase())
        })
}

/// The password of a URL's user info: lowercase words too (`mlsdm-db-pass`,
/// `correcthorsebatterystaple`), as nothing but a password is written there; not a reference or
/// a placeholder (`$(DB_PASSWORD)`, `${X}`, `<password>`, `user:pass@`).
fn is_real_url_password(v: &str) -> bool {
    is_secret_value(v)
        && !["pass", "passwd", "pwd", "pw", "user"].contains(&v.to_ascii_lowercase().as_str())
}

/// [`is_real_secret`] but for names.
fn is_secret_value(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.chars().count() >= 4
        && !v.starts_with(['$', '{', '<', '[', '/', '~'])
        // A URL's credentials are read from the URL (`embedded_credentials`).
        && !v.contains("://")
        && !v.starts_with("./")
        && !v.starts_with("../")
        && !v.starts_with("%(")
        && !v.starts_with("%{")
        && !["environ", "getenv", "process.env", "env[", "env("]
            .iter()
            .any(|r| lower.contains(r))
        && !v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '-'))
        && !["true", "false", "null", "none", "yes", "no", "password", "secret"].contains(&lower.as_str())
        && v.parse::<f64>().is_err()
        // An environment variable's name (`api_key_env: MLSDM_API_KEY`), not its value.
        && !v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !PLACEHOLDER_WORDS.iter().any(|p| lower.contains(p))
}

/// Words that make a value a placeholder (`changeme`, `your-api-key`).
const PLACEHOLDER_WORDS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "example",
    "placeholder",
    "replace",
    "your-",
    "your_",
    "xxxx",
    "todo",
    "dummy",
];

/// Values that are obviously placeholders rather than real keys.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.len() < 16
        || v.contains('<')
        || v.contains("${")
        || PLACEHOLDER_WORDS.iter().any(|p| v.contains(p))
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&c| {
            #[allow(clippy::cast_precision_loss)]
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Base64 as the API server decodes a Secret's `data` or a ConfigMap's `binaryData` (Go's
/// standard encoding, which skips line breaks): a value wrapped at 76 columns, as `base64` writes
/// it, is as valid to the cluster as one on a single line, and must be read (and masked) as such.
pub fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let joined: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .ok()
}

/// [`decode_base64`] as text; `None` when it is not base64 of UTF-8.
pub fn decode_base64_text(raw: &str) -> Option<String> {
    decode_base64(raw).and_then(|b| String::from_utf8(b).ok())
}

/// Replaces Secret data with summaries and returns every value that must never be printed.
pub(super) fn redact(obj: &mut Object) -> Vec<String> {
    let mut sensitive = Vec::new();
    // `kubectl apply` copies the whole object, Secret data included, into this annotation.
    if let Some(ann) = obj
        .json
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        && let Some(v) = ann.get_mut("kubectl.kubernetes.io/last-applied-configuration")
        && obj.kind == "Secret"
    {
        if let Some(s) = v.as_str() {
            sensitive.push(s.to_string());
        }
        *v = Value::String("<redacted>".into());
    }
    if obj.kind == "Secret" {
        let mut summaries = Map::new();
        let root = obj.json.as_object_mut();
        if let Some(root) = root {
            for (field, encoded) in [("data", true), ("stringData", false)] {
                if let Some(Value::Object(data)) = root.remove(field) {
                    for (k, v) in data {
                        let raw = v.as_str().unwrap_or_default().to_string();
                        let decoded = if encoded {
                            decode_base64_text(&raw)
                        } else {
                            Some(raw.clone())
                        };
                        let plain = decoded.clone().unwrap_or_default();
                        if raw.len() >= 4 {
                            sensitive.push(raw.clone());
                        }
                        if plain.len() >= 4 {
                            sensitive.push(plain.clone());
                        }
                        summaries.insert(
                            k,
                            json!({
                                "length": plain.chars().count(),
                                "decodable": decoded.is_some(),
                                "placeholder": is_placeholder(&plain),
                                "entropy": entropy(&plain),
                                "empty": plain.trim().is_empty(),
                            }),
                        );
                    }
                }
            }
            root.insert("data".into(), Value::Object(summaries));
        }
    } else if obj.kind == "ConfigMap" {
        for (k, v) in obj
            .json
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(s) = v.as_str()
                && ((is_credential_key(k) && s.len() >= 4)
                    || looks_like_credential(s)
                    || is_credential_entry(k, s))
            {
                sensitive.push(s.to_string());
                // The parts too: a message quotes one line of a file, not the whole file.
                sensitive.extend(embedded_credentials(s).into_iter().map(str::to_string));
            }
        }
        // binaryData holds base64: a credential there is masked as written and decoded.
        for (k, v) in obj
            .json
            .get("binaryData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(raw) = v.as_str() else { continue };
            let decoded = decode_base64_text(raw).unwrap_or_default();
            if (is_credential_key(k) && decoded.len() >= 4)
                || looks_like_credential(&decoded)
                || is_credential_entry(k, &decoded)
            {
                sensitive.push(raw.to_string());
                sensitive.extend(
                    embedded_credentials(&decoded)
                        .into_iter()
                        .map(str::to_string),
                );
                sensitive.push(decoded);
            }
        }
    }
    // Literal env values under credential names (API_KEY: "...") are secrets too.
    let mut stack = vec![&obj.json];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(name)), Some(Value::String(value))) =
                    (m.get("name"), m.get("value"))
                    && ((is_credential_key(name) && value.len() >= 4)
                        || looks_like_credential(value)
                        || is_credential_entry(name, value))
                {
                    sensitive.push(value.clone());
                    sensitive.extend(embedded_credentials(value).into_iter().map(str::to_string));
                }
                // Credentials written into a probe's path (`/health/live?api_key=...`), a
                // command line or an annotation: the checks print these.
                let quoted = ["path", "command", "args", "annotations"]
                    .iter()
                    .filter_map(|k| m.get(*k));
                for v in quoted {
                    let strings: Vec<&str> = match v {
                        Value::String(x) => vec![x.as_str()],
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        Value::Object(o) => o.values().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    for x in &strings {
                        sensitive.extend(embedded_credentials(x).into_iter().map(str::to_string));
                    }
                }
                // A command line's credentials (`--api-key sk-...`, `curl -u user:PASS`), read
                // over `command` then `args` as api-key-from-secret judges them.
                let words: Vec<&str> = ["command", "args"]
                    .iter()
                    .filter_map(|k| m.get(*k).and_then(Value::as_array))
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                sensitive.extend(
                    super::command_line::credentials(&words)
                        .into_iter()
                        .map(str::to_string),
                );
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    sensitive
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` holds exactly one credential, `secret`, and looks like one as a whole.
    fn finds_exactly(value: &str, secret: &str) {
        assert_eq!(embedded_credentials(value), [secret], "{value}");
        assert!(looks_like_credential(value), "{value}");
    }

    #[test]
    fn credentials_inside_longer_values() {
        assert_eq!(
            embedded_credentials("postgres://app:Pg5ecretPw77@db:5432/app"),
            ["Pg5ecretPw77"]
        );
        // A `/` in a password is percent-encoded in a URL.
        assert_eq!(
            embedded_credentials("url: redis://:a%2Fb+c9Zq@cache:6379/0 # cache"),
            ["a%2Fb+c9Zq"]
        );
        assert_eq!(
            embedded_credentials("postgres://app:%21Zq9xLmW2kP@db/app"),
            ["%21Zq9xLmW2kP"]
        );
        assert_eq!(
            embedded_credentials("jdbc:postgresql://db:5432/app?user=app&password=Zq9xL-mW2kP"),
            ["Zq9xL-mW2kP"]
        );
        assert_eq!(
            embedded_credentials("{\n  \"password\": \"Zq9xL-mW2kP\",\n  \"user\": \"app\"\n}"),
            ["Zq9xL-mW2kP"]
        );
        assert_eq!(
            embedded_credentials("[db]\nhost = db\npassword = \"Pg5ecretIniPw88\"\n"),
            ["Pg5ecretIniPw88"]
        );
        assert_eq!(
            embedded_credentials("export API_TOKEN=tok-81Fj2kd9"),
            ["tok-81Fj2kd9"]
        );
        assert_eq!(
            embedded_credentials("client_secret: S3cr3t-value"),
            ["S3cr3t-value"]
        );
        // Generated lowercase secrets: hex, UUIDs, pwgen.
        assert_eq!(
            embedded_credentials("spring.datasource.password=9f86d081884c7d65"),
            ["9f86d081884c7d65"]
        );
        assert_eq!(
            embedded_credentials("WEBHOOK_SECRET=3f2a9c1e-8b7d-4a5f-9e2d-1c0b9a8f7e6d"),
            ["3f2a9c1e-8b7d-4a5f-9e2d-1c0b9a8f7e6d"]
        );
        assert_eq!(
            embedded_credentials("postgres://mlsdm:k9x2m4p7q8w3@db:5432/mlsdm"),
            ["k9x2m4p7q8w3"]
        );
        // Connection strings: ADO.NET, ODBC (a braced value may hold `;`), JDBC properties.
        assert_eq!(
            embedded_credentials("Server=db;Database=app;User Id=sa;Password=Zq9xL-mW2kP;"),
            ["Zq9xL-mW2kP"]
        );
        assert_eq!(
            embedded_credentials("Driver={ODBC Driver 18};Server=db;UID=sa;PWD={Zq9;xL-mW2kP};"),
            ["Zq9;xL-mW2kP"]
        );
        assert_eq!(
            embedded_credentials(
                "url: jdbc:sqlserver://db:1433;databaseName=app;password=Zq9xLmW2kP"
            ),
            ["Zq9xLmW2kP"]
        );
        // One-line JSON (Helm's toJson), YAML list items, XML, HTTP authorization values and
        // a query string without a scheme (a probe's path).
        assert_eq!(
            embedded_credentials(
                r#"{"openai":{"api_key":"Zx81kPq2LmW9"},"db":{"password":"N7qPw-4kd9Lm"}}"#
            ),
            ["N7qPw-4kd9Lm", "Zx81kPq2LmW9"]
        );
        assert_eq!(
            embedded_credentials("users:\n  - password: Rk29xLmW4pQ\n"),
            ["Rk29xLmW4pQ"]
        );
        assert_eq!(
            embedded_credentials("<db><password>Xm1Lq8Pw7Zk</password></db>"),
            ["Xm1Lq8Pw7Zk"]
        );
        assert_eq!(
            embedded_credentials("Authorization=Basic ODQ2MzQ6Z2xjX2V5SnZJam9pTVRJ"),
            ["ODQ2MzQ6Z2xjX2V5SnZJam9pTVRJ"]
        );
        assert_eq!(
            embedded_credentials("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
            ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"]
        );
        assert_eq!(
            embedded_credentials("/health/live?api_key=Zq8kP2vLx9mW4rT7yU3iO5pA"),
            ["Zq8kP2vLx9mW4rT7yU3iO5pA"]
        );
        // ADO.NET quotes a value holding `;`; a JSON header value; OTEL's percent-encoded space;
        // a probe query value that is a key whatever its name.
        assert_eq!(
            embedded_credentials(r#"Server=db;User Id=sa;Password="Zq9;xLmW2kP";"#),
            ["Zq9;xLmW2kP"]
        );
        assert_eq!(
            embedded_credentials(
                r#"{"headers":{"Authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"}}"#
            ),
            ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"]
        );
        assert_eq!(
            embedded_credentials("headers: \"Authorization=Basic%20ODQ2MzQ6Z2xjX2V5SnZJam9pTVRJ\""),
            ["ODQ2MzQ6Z2xjX2V5SnZJam9pTVRJ"]
        );
        assert_eq!(
            embedded_credentials("/healthz?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"),
            ["AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"]
        );
        // Unclosed braces and tags give nothing (they made the parsers quadratic).
        assert!(embedded_credentials(&"password={;".repeat(2000)).is_empty());
        assert!(embedded_credentials(&"<password>x".repeat(2000)).is_empty());
        // References, placeholders, flags, numbers and MLSDM's own keys are not credentials.
        for value in [
            "# HTTP Basic Authentication for the admin pages",
            "# Clients send a Bearer Authorization header",
            "description: Token Authentication is required",
            "local token = get_token(); local ok = verify(token)",
            "# Supports Basic and Bearer Token-Authentication for the admin API",
            "# Clients send Authorization: Bearer JWT-from-Keycloak",
            "description: Bearer OAuth2-AccessToken required",
            "const TOKEN = __ENV.API_TOKEN; const BASE = __ENV.BASE_URL;",
            "let password = form.Password; let user = form.User;",
            "Authorization=Bearer $(TOKEN)",
            "/health/live?verbose=1",
            "<password>changeme</password>",
            r#"{"password": "${DB_PASSWORD}"}"#,
            "Server=db;Database=app;User Id=sa;Password=$(DB_PASSWORD);",
            "Server=db;Integrated Security=true;PWD=;",
            "postgres://app:$(DB_PASSWORD)@db/app",
            "postgres://app:${DB_PASSWORD}@db/app",
            "postgres://app:<password>@db/app",
            "postgres://app:password@db/app",
            "http://otel-collector.observability:4317",
            "https://host/@user:x",
            "password = changeme",
            "password: ${PASSWORD}",
            "secret: true",
            "token: 12345",
            "max_tokens: 2048",
            "api_key_required: true\napi_key_env_var: API_KEY\nsecrets_in_env_only: true",
            "api_key: MLSDM_API_KEY",
            "password:",
            // Paths, names, words, code and URLs whose `@` is not user info.
            "private_key = /etc/tls/tls.key",
            "token = \"/var/run/secrets/kubernetes.io/serviceaccount/token\"",
            "secret: mlsdm-tls",
            "existing_secret: mlsdm-db",
            "password: required",
            "token: bearer",
            "SECRET_KEY = os.environ['SECRET_KEY']",
            "image: oci://registry.internal:5000/img@sha256:0123abcd",
            "hook: https://alerts.internal:8443/notify/oncall@example.org",
            "repo: ssh://git@host:2222/repo.git@v1.2.0",
            "TOKENIZER_MODEL=Bert-Base-Uncased",
            "token_endpoint_auth_method: client_secret_basic",
            "userPasswordKey: password",
            "proxyPass: http://mlsdm-api:8000",
            "SIGNING_KEY_ID=Kid-2024-01",
            "password-hash: Argon2id",
            "kid: kid-2024-01",
        ] {
            assert!(embedded_credentials(value).is_empty(), "{value}");
        }
    }

    #[test]
    fn names_that_are_credentials() {
        for name in [
            "API_KEY",
            "OPENAI_API_KEY",
            "apiKey",
            "APIKey",
            "GITHUB_TOKEN",
            "client_secret",
            "DB_PASSWORD",
            "MLSDM_API__PASSWORD",
            "SECRET_KEY_BASE",
            "AWS_SECRET_ACCESS_KEY",
            "privateKey",
            "PGPASSWORD",
            "API_KEYS",
            "ADMIN_PASSWORDS",
            "AUTHTOKEN",
            "JWTSECRET",
            "DB_PASSWORD2",
            ".htpasswd",
            "API_KEY_PROD",
        ] {
            assert!(names_a_credential(name), "{name}");
        }
        for name in [
            "TOKENIZER_MODEL",
            "max_tokens",
            "token_limit",
            "TOKEN_URL",
            "PASSWORD_FILE",
            "SECRET_NAME",
            "secretName",
            "existing_secret",
            "api_key_required",
            "api_key_env_var",
            "secrets_in_env_only",
            "KEYCLOAK_REALM",
            "PASS",
            "PROXY_PASS",
            "SIGNING_KEY_ID",
            "jwt.token-prefix",
            "password.encoder",
            "secret.key.algorithm",
            "TOKEN_ISSUER",
            "ACCESS_TOKEN_LIFETIME",
            "tokenExpiresIn",
            "password.reset.subject",
            "SECRET_STORE",
            "tokenAudience",
            "password-hash",
        ] {
            assert!(!names_a_credential(name), "{name}");
        }
    }

    #[test]
    fn probe_query_parameters_under_short_names() {
        for (path, secret) in [
            (
                "/healthz?user=probe&pass=Pr0beSecret2024",
                "Pr0beSecret2024",
            ),
            ("/healthz?pwd=Pw7xQ2mLp9", "Pw7xQ2mLp9"),
            ("/ready?key=Kq8xW2mLp9Zt", "Kq8xW2mLp9Zt"),
            ("/ready?auth=Au7xQ2mLp9", "Au7xQ2mLp9"),
            (
                "/f?sv=2022-11-02&sig=Xb9kQ2mLp7Wz%2BAbc%3D",
                "Xb9kQ2mLp7Wz%2BAbc%3D",
            ),
            ("/f?signature=Sg7xQ2mLp9", "Sg7xQ2mLp9"),
            ("/api/health?code=aZ9xQ2mLp7Wz_Yk3==", "aZ9xQ2mLp7Wz_Yk3=="),
            ("/h?access_token=At7xQ2mLp9", "At7xQ2mLp9"),
            ("/h?token=Tk7xQ2mLp9", "Tk7xQ2mLp9"),
            ("/h?secret=Sc7xQ2mLp9", "Sc7xQ2mLp9"),
            (
                "http://127.0.0.1:8000/healthz?pass=Pr0beSecret2024",
                "Pr0beSecret2024",
            ),
        ] {
            finds_exactly(path, secret);
        }
        // Their look-alikes: flags, numbers, words, references.
        for path in [
            "/healthz?pass=true",
            "/healthz?code=200",
            "/healthz?key=readiness",
            "/healthz?auth=none",
            "/healthz?sig=$(SIG)",
            "/metrics?format=json&token=${TOKEN}",
            "/healthz?passthrough=Xq7xQ2mLp9",
            "/search?keyword=Ab12cd",
        ] {
            assert!(embedded_credentials(path).is_empty(), "{path}");
        }
    }

    /// Review 28c: an object key naming a model file (`EMBEDDINGS_OBJECT_KEY=embeddings/...`)
    /// failed configmap-no-credentials as a random token; a base64 key with `/` still counts.
    #[test]
    fn object_paths_under_key_names_are_not_keys() {
        assert!(!is_credential_entry(
            "EMBEDDINGS_OBJECT_KEY",
            "embeddings/MiniLM-L6-v2/2024-06-01.npy"
        ));
        assert!(
            embedded_credentials("EMBEDDINGS_OBJECT_KEY=embeddings/MiniLM-L6-v2/2024-06-01.npy\n")
                .is_empty()
        );
        assert!(is_credential_entry(
            "VENDOR_KEY",
            "q8Xz2LmW9pK4rT7yU3iO/5pAbCd+Ef12Gh34"
        ));
    }

    #[test]
    fn short_and_provider_credential_names() {
        for name in [
            "AZURE_OPENAI_KEY",
            "OPENAI_KEY",
            "COHERE_KEY",
            "REDIS_PASS",
            "MYSQL_PWD",
            "RABBITMQ_DEFAULT_PASS",
            "SMTP_PASS",
            "REDIS_AUTH",
            "BASIC_AUTH",
            "KAFKA_SASL_JAAS_CONFIG",
            "sasl.jaas.config",
            "NEW_RELIC_LICENSE_KEY",
            "requirepass",
        ] {
            assert!(names_a_credential(name), "{name}");
        }
        for name in [
            "CACHE_KEY_PREFIX",
            "SORT_KEY",
            "PASSWORD_FILE",
            "TOKEN_URL",
            "max_tokens",
            "TOKENIZER_MODEL",
            "SIGNING_KEY_ID",
            "PASS",
            "PWD",
            "OLDPWD",
            "PROXY_PASS",
            "fastcgi_pass",
            "FIRST_PASS",
            "BYPASS",
            "SMTP_AUTH",
            "ENABLE_AUTH",
            "OAUTH",
            "KEY",
            "ROUTING_KEY",
            "KAFKA_CONFIG",
        ] {
            assert!(!names_a_credential(name), "{name}");
        }
        // A `*_KEY` or `*_AUTH` whose name leaves it open is judged with its value.
        for (name, value) in [
            ("AZURE_OPENAI_KEY", "0a8f3c2e9b7d41f6a5c3e2d1b0f9e8d7"),
            ("routing_key", "3f2a9c1e8b7d4a5f9e2d1c0b9a8f7e6d"),
            ("VENDOR_KEY", "Zq8kP2vLx9mW4rT7yU3iO5pA"),
            ("PROXY_AUTH", "admin:Ba7xQ2mLp9Wz"),
            ("BASIC_AUTH", "admin:Ba7xQ2mLp9Wz"),
            ("REDIS_PASS", "Rd7kQ2xLm9Pw"),
        ] {
            assert!(is_credential_entry(name, value), "{name}");
        }
        for (name, value) in [
            ("SORT_KEY", "created_at"),
            ("CACHE_KEY", "mlsdm:v1:embeddings"),
            ("S3_KEY", "models/v1/weights.bin"),
            ("routing_key", "orders.created"),
            ("PARTITION_KEY", "tenant_id"),
            (
                "RECAPTCHA_SITE_KEY",
                "6LcAbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            ),
            ("VAPID_PUBLIC_KEY", "BEl62iUYgUivxIkv69yViEuiBIa40HI0F7k3"),
            ("IDEMPOTENCY_KEY", "request_id"),
            ("SMTP_AUTH", "login"),
            ("REGISTRY_AUTH", "htpasswd"),
            ("ENABLE_AUTH", "true"),
            ("BASIC_AUTH", "false"),
            ("REDIS_PASS", "${REDIS_PASSWORD}"),
            ("CONFIG_CHECKSUM", "0a8f3c2e9b7d41f6a5c3e2d1b0f9e8d7"),
            ("GIT_SHA", "0a8f3c2e9b7d41f6a5c3e2d1b0f9e8d70a8f3c2e"),
        ] {
            assert!(!is_credential_entry(name, value), "{name}: {value}");
        }
        assert_eq!(
            embedded_credentials("AZURE_OPENAI_KEY=0a8f3c2e9b7d41f6a5c3e2d1b0f9e8d7"),
            ["0a8f3c2e9b7d41f6a5c3e2d1b0f9e8d7"]
        );
        assert_eq!(
            embedded_credentials("export REDIS_PASS=Rd7kQ2xLm9Pw"),
            ["Rd7kQ2xLm9Pw"]
        );
        assert!(embedded_credentials("SORT_KEY=created_at\nproxy_pass: Up5tream01").is_empty());
    }

    #[test]
    fn lowercase_passwords_in_a_url() {
        for (url, password) in [
            (
                "postgresql://mlsdm:mlsdm-db-pass@postgres:5432/mlsdm",
                "mlsdm-db-pass",
            ),
            (
                "redis://:correcthorsebatterystaple@redis:6379/0",
                "correcthorsebatterystaple",
            ),
            ("amqp://mlsdm:rabbitpass@rabbitmq:5672//", "rabbitpass"),
        ] {
            finds_exactly(url, password);
        }
        for url in [
            "postgres://app:$(DB_PASSWORD)@db/app",
            "postgres://app:${DB_PASSWORD}@db/app",
            "postgres://app:<password>@db/app",
            "postgres://user:pass@db/app",
            "postgres://user:password@db/app",
            "postgres://app:secret@db/app",
            "postgres://app:changeme@db/app",
            "postgres://app:DB_PASSWORD@db/app",
            "amqp://guest@rabbitmq:5672//",
            "postgres://db:5432/mlsdm",
        ] {
            assert!(embedded_credentials(url).is_empty(), "{url}");
        }
    }

    #[test]
    fn credentials_in_config_file_syntaxes() {
        let mut missed = Vec::new();
        for (text, secret) in [
            (
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"mlsdm\" password=\"Kf9xQ2mLp7Wz\";",
                "Kf9xQ2mLp7Wz",
            ),
            ("requirepass Rd7kQ2xLm9Pw", "Rd7kQ2xLm9Pw"),
            ("masterauth Rd7kQ2xLm9Pw", "Rd7kQ2xLm9Pw"),
            ("sentinel auth-pass mymaster Sn7kQ2xLm9Pw", "Sn7kQ2xLm9Pw"),
            (
                "machine api.internal login mlsdm password Nr7xQ2mLp9",
                "Nr7xQ2mLp9",
            ),
            (
                "machine api.internal\n  login mlsdm\n  password Nr7xQ2mLp9",
                "Nr7xQ2mLp9",
            ),
            (
                r#"<Resource name="jdbc/mlsdm" username="mlsdm" password="Tc7xQ2mLp9Wz"/>"#,
                "Tc7xQ2mLp9Wz",
            ),
            (
                r#"<add key="ApiKey" value="Ak7xQ2mLp9Wz"/>"#,
                "Ak7xQ2mLp9Wz",
            ),
            (
                r#"<property name="password" value="Sp7xQ2mLp9Wz"/>"#,
                "Sp7xQ2mLp9Wz",
            ),
            (
                "auth: {username: mlsdm, password: Fm7xQ2mLp9Wz}",
                "Fm7xQ2mLp9Wz",
            ),
            ("spring.datasource.password:Sp7xQ2mLp9Wz", "Sp7xQ2mLp9Wz"),
            ("spring.datasource.password Sp7xQ2mLp9Wz", "Sp7xQ2mLp9Wz"),
            ("    HTTP_Passwd  Fb7xQ2mLp9", "Fb7xQ2mLp9"),
            (
                "JAVA_OPTS=-Xmx2g -Djavax.net.ssl.keyStorePassword=Ks7xQ2mLp9 -Dfoo=bar",
                "Ks7xQ2mLp9",
            ),
            ("define('DB_PASSWORD', 'Wp7xQ2mLp9Wz');", "Wp7xQ2mLp9Wz"),
            ("'password' => 'Wp7xQ2mLp9Wz',", "Wp7xQ2mLp9Wz"),
            ("$config['password'] => 'Wp7xQ2mLp9Wz',", "Wp7xQ2mLp9Wz"),
            (
                "conn = { host = \"db\", password = \"Tm7xQ2mLp9\" }",
                "Tm7xQ2mLp9",
            ),
            (
                "x-honeycomb-team: Hc7xQ2mLp9Wz4Rt6Yu8Io0",
                "Hc7xQ2mLp9Wz4Rt6Yu8Io0",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team=Hc7xQ2mLp9Wz4Rt6Yu8Io0,x-honeycomb-dataset=mlsdm",
                "Hc7xQ2mLp9Wz4Rt6Yu8Io0",
            ),
            (
                "//registry.npmjs.org/:_authToken=npm_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
                "npm_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
            ),
            (
                "slack_api_url: https://hooks.slack.com/services/T04ABCDEF/B05GHIJKL/q8Xz2LmW9pK4rT7yU3iO5pAb",
                "q8Xz2LmW9pK4rT7yU3iO5pAb",
            ),
            (
                "url: https://discord.com/api/webhooks/123456789012345678/Dx7kQ2mLp9Wz-Ab_Cd3Ef5Gh7",
                "Dx7kQ2mLp9Wz-Ab_Cd3Ef5Gh7",
            ),
            (
                "env: [{name: DB_PASSWORD, value: Ev7xQ2mLp9}]",
                "Ev7xQ2mLp9",
            ),
        ] {
            if embedded_credentials(text) != [secret] || !looks_like_credential(text) {
                missed.push(text);
            }
        }
        assert!(missed.is_empty(), "{missed:#?}");
        assert!(looks_like_credential(
            "npm_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78"
        ));
        // Their look-alikes: prose, code, types, references, public halves and ids.
        for text in [
            "npm_config_cache_directory_path",
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"mlsdm\" password=\"${KAFKA_PASSWORD}\";",
            "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/etc/kafka.keytab\";",
            "requirepass foobared",
            "requirepass \"${REDIS_PASSWORD}\"",
            "# requirepass is set from the Secret",
            "Password Required",
            "Token Authentication",
            "machine api.internal login mlsdm",
            r#"<add key="LogLevel" value="Information"/>"#,
            r#"<property name="url" value="jdbc:postgresql://db:5432/mlsdm"/>"#,
            r#"<property name="password" value="${db.password}"/>"#,
            "auth: {username: mlsdm, password: '{{ .Values.password }}'}",
            "fn login(user: &str, password: &str) -> bool",
            "def connect(password: str, token: Optional[str] = None):",
            "data class Creds(val user: String, val password: String)",
            "token: Optional[str] = None",
            "if (password == null) return; const t = this.token;",
            "x = { password = settings.DB_PASSWORD }",
            "password=%s token=%(token)s",
            "define('DB_HOST', 'db.internal');",
            "-Djavax.net.ssl.keyStore=/etc/tls/keystore.jks",
            "proxy_pass http://mlsdm-api:8000;",
            "x-honeycomb-dataset: mlsdm",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/your/webhook/url",
            "image: quay.io/org/secret:v1.2.3",
            "https://x-access-token@github.com/org/repo",
            "env: [{name: LOG_LEVEL, value: Info2}]",
            "cache key: Sorted2024",
        ] {
            if !embedded_credentials(text).is_empty() {
                missed.push(text);
            }
        }
        assert!(missed.is_empty(), "false alarms: {missed:#?}");
    }

    #[test]
    fn long_lines_of_keys_without_values_are_read_whole() {
        // Unclosed quotes, and keys with no terminator (`a=a=a=...`: each key's value was
        // looked for over a 1 KiB window, a thousand times the line's cost; the line's
        // terminators are now found once). No timing here: what is checked is that both end
        // and find nothing, and that a credential after them is still found.
        assert!(embedded_credentials(&"a=".repeat(50_000)).is_empty());
        for filler in ["password='x\" ", "a="] {
            let line = format!("{} password=Zq9plain-pw", filler.repeat(50_000));
            assert!(
                embedded_credentials(&line).contains(&"Zq9plain-pw"),
                "{filler}"
            );
        }
    }

    #[test]
    fn base64_as_the_api_server_reads_it() {
        assert_eq!(
            decode_base64_text("c2stbGl2ZS1h\nYmNk\r\n").as_deref(),
            Some("sk-live-abcd")
        );
        assert_eq!(decode_base64_text("not base64!"), None);
    }
}
