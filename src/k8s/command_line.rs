//! Credentials passed on a container's command line (`command` and `args`): a key written there
//! is in the manifest, in git and in every `ps` on the node, as a literal env value is, and
//! `api-key-from-secret` passed it (`args: [--openai-api-key, sk-proj-...]`).
//!
//! Our own reading, since no crate reads command lines for credentials: each word as a value
//! (`sk-...`, `--password=X`, a URL with a password, a `sh -c` script's `export KEY=...`), a
//! flag that names a credential and the word after it (`--api-key X`, `--token X`), and the few
//! flags of common clients whose value is a password (`curl -u user:X`, `mysql -pX`,
//! `redis-cli -a X`, `docker login -p X`). A shell script (`sh -c "..."`) is read word by word
//! the same way. References (`$(API_KEY)`, `${TOKEN}`) are what a manifest should hold, and are
//! not credentials.

use super::secrets::{embedded_credentials, is_real_secret, looks_like_credential};

/// The parts of `words` (a container's `command` then `args`) that are credentials, as they are
/// written (what masking must hide).
pub fn credentials<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    scan(words, &mut found, true);
    found.sort_unstable();
    found.dedup();
    found
}

/// Programs whose short flag takes a password (glued, for mysql's `-p`).
const MYSQL: &[&str] = &[
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mariadb",
    "mariadb-dump",
];

fn scan<'a>(words: &[&'a str], found: &mut Vec<&'a str>, scripts: bool) {
    let program = |names: &[&str]| {
        words
            .iter()
            .any(|w| names.contains(&w.rsplit('/').next().unwrap_or(w)))
    };
    let (mysql, redis, login) = (
        program(MYSQL),
        program(&["redis-cli"]),
        words.contains(&"login"),
    );
    for (i, &word) in words.iter().enumerate() {
        let script = scripts && i > 0 && words[i - 1] == "-c";
        if script {
            // `sh -c "export OPENAI_API_KEY=sk-...; exec app"`, word by word, after the shell's
            // quote removal (`-p"$MYSQL_PASSWORD"` is `-p$MYSQL_PASSWORD`, a reference).
            let inner: Vec<&str> = word
                .split(|c: char| c.is_whitespace() || c == ';')
                .filter(|w| !w.is_empty())
                .collect();
            let mut unquoted: Vec<String> = Vec::with_capacity(inner.len());
            for w in &inner {
                unquoted.push(w.replace(['"', '\'', '`'], ""));
            }
            let mut inner_found = Vec::new();
            let refs: Vec<&str> = unquoted.iter().map(String::as_str).collect();
            scan(&refs, &mut inner_found, false);
            // A header in the script (`--auth-header='Bearer X'`, `curl -H 'Authorization:
            // Bearer X'`): its quotes removed, the scheme and the token are two words, which
            // the word-by-word reading does not pair (review finding).
            let unquoted_script = word.replace(['"', '\'', '`'], "");
            if let Some(token) = header_token(&unquoted_script)
                && let Some(at) = word.find(token)
            {
                found.push(&word[at..at + token.len()]);
            }
            // The found parts are of the unquoted words: the same text is in the script.
            for part in inner_found {
                if let Some(at) = word.find(part) {
                    found.push(&word[at..at + part.len()]);
                }
            }
            continue;
        }
        if word.trim().contains(char::is_whitespace) {
            // One argument with spaces that is no script: a header (`-H "Authorization: Bearer
            // ..."`), a `key=value` line.
            found.extend(embedded_credentials(word));
            found.extend(header_token(word));
            continue;
        }
        // `--flag=value`: the value is judged (a `$(VAR)` reference is what it should be).
        let (flag_part, inline_value) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (Some(flag), Some(value)),
            _ => (None, None),
        };
        if let (Some(flag), Some(value)) = (flag_part, inline_value) {
            let name = flag.trim_start_matches('-');
            if (super::secrets::names_a_credential(name) && is_real_secret(value))
                || (looks_like_credential(value) && is_real_secret(value))
            {
                found.push(value);
            }
            continue;
        }
        if let Some((_, value)) = word.rsplit_once('=')
            && looks_like_credential(value)
            && is_real_secret(value)
        {
            // An assignment (`OPENAI_API_KEY=sk-...`, or in code
            // `os.environ['OPENAI_API_KEY']='sk-...'` once quotes are removed): its value.
            found.push(value);
        } else if looks_like_credential(word) {
            let embedded = embedded_credentials(word);
            if embedded.is_empty() {
                found.push(word);
            } else {
                found.extend(embedded);
            }
        }
        let next = words.get(i + 1).copied();
        // A header split into words (`-H Authorization: Bearer TOKEN` in a script): the word
        // after an auth scheme, or after a credential-named header (`X-API-Key: TOKEN`).
        let scheme = ["bearer", "basic", "token"].contains(&word.to_ascii_lowercase().as_str());
        let header = word
            .strip_suffix(':')
            .is_some_and(super::secrets::names_a_credential);
        if (scheme || header)
            && let Some(v) = next
            && v.len() >= 12
            && is_real_secret(v)
        {
            found.push(v);
        }
        let Some(flag) = word.strip_prefix('-') else {
            continue;
        };
        let long = flag.strip_prefix('-');
        let value = next.filter(|v| !v.starts_with('-') && is_real_secret(v));
        match (long, flag) {
            // `--password X`, `--api-key X`, `--token X`.
            (Some(name), _) if super::secrets::names_a_credential(name) => found.extend(value),
            // curl's and wget's `-u user:password` / `--user user:password`.
            (Some("user"), _) | (None, "u") => {
                if let Some((_, password)) = next.and_then(|v| v.split_once(':'))
                    && is_real_secret(password)
                {
                    found.push(password);
                }
            }
            // curl's glued `-uuser:password`.
            (None, glued) if glued.len() > 2 && glued.starts_with('u') && glued.contains(':') => {
                if let Some((_, password)) = glued.split_once(':')
                    && is_real_secret(password)
                {
                    found.push(password);
                }
            }
            (None, "a") if redis => found.extend(value),
            (None, "p") if login => found.extend(value),
            // mysql's `-pPASSWORD` (`-p PASSWORD` prompts, and the word after names a database).
            (None, glued) if mysql && glued.len() > 1 && glued.starts_with('p') => {
                let password = &word[2..];
                if is_real_secret(password) {
                    found.push(password);
                }
            }
            _ => {}
        }
    }
}

/// The token after an HTTP authorization scheme in one argument (`--auth-header=Bearer X`,
/// `-H "Authorization: Basic X"`). On a command line nothing but a header is written so, and the
/// token is a credential whatever it looks like: the reading of free text
/// (`secrets::embedded_credentials`) asks for a long random token, so as not to take prose
/// (`Bearer OAuth2-AccessToken required`) for one, and a short or wordy token was printed in
/// every report (review finding). A reference (`$(TOKEN)`) or a placeholder is not one.
fn header_token(word: &str) -> Option<&str> {
    let parts: Vec<&str> = word.split_whitespace().collect();
    parts.windows(2).enumerate().find_map(|(i, pair)| {
        let scheme = pair[0]
            .rsplit(['=', ':', '"', '\''])
            .next()
            .unwrap_or_default();
        let token = pair[1].trim_matches(['"', '\'', ',', ';']);
        let lower = token.to_ascii_lowercase();
        // A server's challenge (`WWW-Authenticate: Basic realm=...`) names a scheme too, and
        // holds no credential.
        let before = parts[..=i].join(" ").to_ascii_lowercase();
        (["bearer", "basic", "token"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
            && !before.contains("authenticate")
            && token.len() >= 6
            // A token (b64token, `=` only as padding), not a word (`Token bucket`) or a
            // parameter (`realm=mlsdm`).
            && token
                .trim_end_matches('=')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c))
            && !token.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !["token", "secret", "password", "changeme", "xxxxxx"].contains(&lower.as_str())
            && !lower.contains("xxxx"))
        .then_some(token)
    })
}

#[cfg(test)]
mod tests {
    use super::credentials;

    #[test]
    fn credentials_on_a_command_line_are_found() {
        for (words, secret) in [
            (
                &[
                    "app",
                    "--openai-api-key",
                    "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12",
                ][..],
                "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12",
            ),
            (&["app", "--password=My5qlR00tPw"][..], "My5qlR00tPw"),
            (&["app", "--db-password", "My5qlR00tPw"][..], "My5qlR00tPw"),
            (
                &["curl", "-u", "admin:Cu7xQ2mLp9", "http://x"][..],
                "Cu7xQ2mLp9",
            ),
            (&["mysql", "-h", "db", "-pMy5qlR00tPw"][..], "My5qlR00tPw"),
            (
                &["redis-cli", "-a", "Rd7kQ2xLm9Pw", "ping"][..],
                "Rd7kQ2xLm9Pw",
            ),
            (
                &["docker", "login", "-u", "ci", "-p", "Dk7xQ2mLp9Wz"][..],
                "Dk7xQ2mLp9Wz",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "export OPENAI_API_KEY=sk-proj-Zz12Cd34Ef56Gh78Ij90Kl12; exec app",
                ][..],
                "sk-proj-Zz12Cd34Ef56Gh78Ij90Kl12",
            ),
            (
                &["sh", "-c", "mysql -h db -pMy5qlR00tPw < /init.sql"][..],
                "My5qlR00tPw",
            ),
            (
                &["sh", "-c", "curl -sf -u 'ops:Cu7xQ2mLp9' http://x"][..],
                "Cu7xQ2mLp9",
            ),
            (
                &[
                    "curl",
                    "-H",
                    "Authorization: Bearer Zq8kP2vLx9mW4rT7yU3iO5pA",
                    "http://x",
                ][..],
                "Zq8kP2vLx9mW4rT7yU3iO5pA",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "curl -H \"Authorization: Bearer Zq8kP2vLx9mW4rT7yU3iO5pA\" http://x",
                ][..],
                "Zq8kP2vLx9mW4rT7yU3iO5pA",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "curl -H 'X-API-Key: Zq8kP2vLx9mW4rT7yU3iO5pA' http://x",
                ][..],
                "Zq8kP2vLx9mW4rT7yU3iO5pA",
            ),
            (
                &[
                    "python",
                    "-c",
                    "import os; os.environ['OPENAI_API_KEY']='sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12'",
                ][..],
                "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12",
            ),
            (
                &["curl", "-uadmin:Cu7xQ2mLp9", "http://x"][..],
                "Cu7xQ2mLp9",
            ),
        ] {
            assert_eq!(credentials(words), vec![secret], "{words:?}");
        }
        // Review finding: a short or wordy token after a scheme was printed in every report.
        for (words, secret) in [
            (
                &["app", "--auth-header=Bearer THISISAFAKESECRET1234567890"][..],
                "THISISAFAKESECRET1234567890",
            ),
            (
                &["app", "--auth-header=Bearer Hunter2Pass99"][..],
                "Hunter2Pass99",
            ),
            (
                &[
                    "curl",
                    "-H",
                    "Authorization: Bearer 7Fq2LmZ9xP4wK8tR",
                    "http://x",
                ][..],
                "7Fq2LmZ9xP4wK8tR",
            ),
            (
                &["app", "--header=Authorization: Basic Hunter2Pass99"][..],
                "Hunter2Pass99",
            ),
            // In a script, quoted (a second review finding).
            (
                &[
                    "sh",
                    "-c",
                    "exec mlsdm serve --auth-header='Bearer Hunter2Pass99'",
                ][..],
                "Hunter2Pass99",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "curl -H 'Authorization: Bearer 7Fq2LmZ9xP' http://x && exec app",
                ][..],
                "7Fq2LmZ9xP",
            ),
        ] {
            assert_eq!(credentials(words), vec![secret], "{words:?}");
        }
    }

    #[test]
    fn ordinary_command_lines_hold_no_credential() {
        for words in [
            &[
                "uvicorn",
                "mlsdm.api.app:app",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
            ][..],
            &["app", "--api-key", "$(API_KEY)"][..],
            &["app", "--token-file", "/var/run/secrets/token"][..],
            &["sh", "-c", "exec app --api-key \"$API_KEY\""][..],
            &["curl", "-u", "$(USER):$(PASSWORD)", "http://x"][..],
            &["python", "-u", "main.py"][..],
            &["gunicorn", "-p", "/tmp/app.pid", "-a", "x"][..],
            &["mysql", "-p", "mlsdm"][..],
            &["ls", "-la", "/data"][..],
            &["app", "--password-file", "/etc/app/password"][..],
            // Review 28c: references, quoted as a shell script quotes them.
            &[
                "sh",
                "-c",
                "until mysqladmin ping -h mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\" --silent; do sleep 2; done",
            ][..],
            &[
                "sh",
                "-c",
                "curl -sf -u admin:\"$ADMIN_PASSWORD\" http://es:9200/",
            ][..],
            &[
                "oauth2-proxy",
                "--client-secret=$(CLIENT_SECRET)",
                "--cookie-secret=$(OAUTH2_PROXY_COOKIE_SECRET)",
            ][..],
            &["app", "--session-secret=$(COOKIE_SECRET)"][..],
            &["curl", "-H", "Authorization: Bearer $(TOKEN)", "http://x"][..],
            &["curl", "-H", "Authorization: Bearer ${TOKEN}", "http://x"][..],
            &["curl", "-H", "Authorization: Bearer <token>", "http://x"][..],
            &["app", "--auth-header=Bearer xxxxxxxx"][..],
            // A challenge, a parameter, a word: no credential.
            &["proxy", "--add-header=WWW-Authenticate: Basic realm=mlsdm"][..],
            &[
                "proxy",
                "--add-header=WWW-Authenticate: Basic MLSDM2024realm",
            ][..],
            &["app", "--limit=Token bucket"][..],
        ] {
            assert!(
                credentials(words).is_empty(),
                "{words:?}: {:?}",
                credentials(words)
            );
        }
    }
}
