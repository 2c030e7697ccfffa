//! Everything that does I/O to gather facts: manifest files, kustomize/helm rendering, the live
//! cluster, the running service and its metrics. What they gather is data in `crate::facts`.

pub mod http;
pub mod kube;
mod kubectl_yaml;
pub(crate) mod manifest_yaml;
pub mod manifests;
pub mod metrics;
pub mod render;
pub(crate) mod yaml_plain;

// The paths these items had before `k8s` and `facts` were split out of this module, kept so
// that code written against them still compiles; new code names the lower layer.
pub use crate::facts::{Facts, mlsdm};
pub use crate::k8s::{Location, Object, selector};

/// Registers the user information and query values of a URL as typed (parsed or not: a URL the
/// parser refuses is still echoed in the error).
pub fn register_url_credentials(value: &str) {
    use base64::Engine as _;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    // Up to the last `@` before the query: a password typed with `/` in it (generated and
    // base64 ones have them) ends the authority for a URL parser, but it is still the password
    // (an `@` in a path masks a little more than it needs to; a password never leaks).
    let before_query = rest.split(['?', '#']).next().unwrap_or_default();
    // And up to the last `@` at all: a password typed with a raw `?` or `#` (which a URL parser
    // reads as the start of a query or fragment) was echoed whole in the error about it.
    let userinfos = [before_query, rest]
        .into_iter()
        .filter_map(|part| part.rsplit_once('@').map(|(userinfo, _)| userinfo));
    for userinfo in userinfos {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        // A token given as the user name is the secret; with a password, the name is not.
        let secret = if password.is_empty() { user } else { password };
        crate::redact::register(secret);
        crate::redact::register(&decode(secret));
        let basic = format!("{}:{}", decode(user), decode(password));
        crate::redact::register(&base64::engine::general_purpose::STANDARD.encode(basic));
        if let Ok(u) = reqwest::Url::parse(value) {
            crate::redact::register(u.password().unwrap_or(u.username()));
        }
    }
    // A query parameter named like a credential (`?token=`, `?api_key=`): not every value, or
    // `?format=json` would mask "json" in the whole report.
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for (key, v) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            if crate::k8s::secrets::is_credential_key(&decode(key)) {
                crate::redact::register(v);
                crate::redact::register(&decode(v));
            }
        }
    }
}

/// A JSON value's type, for messages that must not quote the value (a Secret's, a token).
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
