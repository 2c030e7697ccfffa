//! Kubernetes' CEL extension libraries that the `cel` crate does not have, with the names and
//! semantics `ValidatingAdmissionPolicy` gives them (k8s.io/apiserver/pkg/cel/library), so a
//! rule written for an admission policy reads the same in a check file:
//!
//! - lists: `isSorted()`, `sum()`;
//! - regex: `find(re)`, `findAll(re)`, `findAll(re, limit)` (patterns bounded like `matches`);
//! - URLs: `url(s)`, `isURL(s)`, `getScheme()`, `getHost()`, `getHostname()`, `getPort()`,
//!   `getEscapedPath()`, `getQuery()`;
//! - IPs: `ip(s)`, `isIP(s)`, `family()`, `isUnspecified()`, `isLoopback()`,
//!   `isLinkLocalMulticast()`, `isLinkLocalUnicast()`, `isGlobalUnicast()`;
//! - CIDRs: `cidr(s)`, `isCIDR(s)`, `containsIP(ip|s)`, `containsCIDR(cidr|s)`, `ip()`,
//!   `masked()`, `prefixLength()`.
//!
//! Parsing uses the `url` crate (WHATWG) and `ipnet`; both are already in the tree through
//! reqwest. Where Go's parsers and these differ, Kubernetes' documented rules are kept by hand:
//! an IP with a zone or an IPv4-mapped IPv6 address is refused, as `ip()` refuses them; a URL's
//! parts are read from the text as written (the url crate only validates), and input the WHATWG
//! parser would repair (spaces, backslashes) is refused. Known differences left: `isSorted` and
//! `sum` have no timestamp or duration overloads.
//!
//! One file: about 450 lines of code, one small function per library function, the rest tests.

use cel::extractors::This;
use cel::objects::{Opaque, Value};
use cel::{ExecutionError, FunctionContext};
use std::net::IpAddr;
use std::sync::Arc;

/// `url(s)`: an absolute URI, or an absolute path (as Go's `url.ParseRequestURI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    host: String,
    hostname: String,
    port: String,
    path: String,
    query: Vec<(String, String)>,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &'static str {
        "kubernetes.URL"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &'static str {
        "net.IP"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &'static str {
        "net.CIDR"
    }
}

/// How an opaque value of this library reads in a message or JSON.
pub fn display(o: &dyn Opaque) -> Option<String> {
    if let Some(ip) = o.downcast_ref::<Ip>() {
        return Some(ip.0.to_string());
    }
    if let Some(c) = o.downcast_ref::<Cidr>() {
        return Some(c.0.to_string());
    }
    o.downcast_ref::<Url>().map(|u| {
        let mut s = String::new();
        if !u.scheme.is_empty() {
            s = format!("{}://{}", u.scheme, u.host);
        }
        s.push_str(&u.path);
        s
    })
}

fn parse_url(s: &str) -> Result<Url, String> {
    let bad = |why: &str| format!("URL parse error during conversion from string: {s:?}: {why}");
    // The url crate (WHATWG) repairs what Go's parser refuses or keeps as written: it trims
    // spaces, reads `\` as `/`, resolves `..`, lowercases and decodes hosts, drops a leading
    // zero from a port. A check must see what Kubernetes sees, so such input is refused and
    // every part is taken from the text as written; the url crate only validates it.
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(bad(
            "spaces, control characters and backslashes are not allowed",
        ));
    }
    if s.starts_with('/') && !s.starts_with("//") {
        let base = url::Url::parse("http://path.invalid").map_err(|e| bad(&e.to_string()))?;
        let u = base.join(s).map_err(|e| bad(&e.to_string()))?;
        return Ok(Url {
            scheme: String::new(),
            host: String::new(),
            hostname: String::new(),
            port: String::new(),
            path: written_path(s).to_string(),
            query: u.query_pairs().into_owned().collect(),
        });
    }
    let u = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| bad("not an absolute URI or an absolute path"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .to_string();
    let (hostname, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed IPv6 address"))?;
        (
            addr.to_string(),
            after.strip_prefix(':').unwrap_or("").to_string(),
        )
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (host.clone(), String::new()),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid port"));
    }
    Ok(Url {
        scheme: scheme.to_string(),
        host,
        hostname,
        port,
        path: written_path(tail).to_string(),
        query: u.query_pairs().into_owned().collect(),
    })
}

/// The path as written: up to the query or the fragment, dot segments kept (Go's EscapedPath).
fn written_path(s: &str) -> &str {
    s.split(['?', '#']).next().unwrap_or("")
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let bad =
        |why: &str| format!("IP Address {s:?} parse error during conversion from string: {why}");
    if s.contains('%') {
        return Err(bad("IP address with zone value is not allowed"));
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|e: std::net::AddrParseError| bad(&e.to_string()))?;
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(bad("IPv4-mapped IPv6 address is not allowed"));
    }
    Ok(ip)
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let bad = |why: &str| {
        format!("network address parse error during conversion from string: {s:?}: {why}")
    };
    let (addr, _) = s.split_once('/').ok_or_else(|| bad("no prefix length"))?;
    parse_ip(addr).map_err(|e| bad(&e))?;
    s.parse()
        .map_err(|e: ipnet::AddrParseError| bad(&e.to_string()))
}

fn opaque<T: Opaque + Clone>(v: &Value) -> Option<T> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<T>().cloned(),
        _ => None,
    }
}

fn url_of(ftx: &FunctionContext, v: &Value) -> Result<Url, ExecutionError> {
    opaque::<Url>(v).ok_or_else(|| ftx.error("expected a URL (from url())"))
}

/// `url(s)`.
#[allow(clippy::needless_pass_by_value)]
pub fn url(ftx: &FunctionContext, s: Arc<String>) -> Result<Value, ExecutionError> {
    parse_url(&s)
        .map(|u| Value::Opaque(Arc::new(u)))
        .map_err(|e| ftx.error(e))
}

/// `isURL(s)`.
#[allow(clippy::needless_pass_by_value)]
pub fn is_url(s: Arc<String>) -> bool {
    parse_url(&s).is_ok()
}

macro_rules! url_getter {
    ($name:ident, $field:ident) => {
        #[allow(clippy::needless_pass_by_value)]
        pub fn $name(ftx: &FunctionContext, This(v): This<Value>) -> Result<Value, ExecutionError> {
            Ok(Value::String(Arc::new(url_of(ftx, &v)?.$field)))
        }
    };
}
url_getter!(get_scheme, scheme);
url_getter!(get_host, host);
url_getter!(get_hostname, hostname);
url_getter!(get_port, port);
url_getter!(get_escaped_path, path);

/// `getQuery()`: each key's values, in order.
#[allow(clippy::needless_pass_by_value)]
pub fn get_query(ftx: &FunctionContext, This(v): This<Value>) -> Result<Value, ExecutionError> {
    let mut map: std::collections::BTreeMap<String, Vec<Value>> = std::collections::BTreeMap::new();
    for (k, val) in url_of(ftx, &v)?.query {
        map.entry(k).or_default().push(Value::String(Arc::new(val)));
    }
    let map: std::collections::HashMap<cel::objects::Key, Value> = map
        .into_iter()
        .map(|(k, vs)| (cel::objects::Key::from(k), Value::List(Arc::new(vs))))
        .collect();
    Ok(Value::Map(cel::objects::Map { map: Arc::new(map) }))
}

/// `ip(s)`, and `cidr.ip()`: the prefix's address.
#[allow(clippy::needless_pass_by_value)]
pub fn ip(ftx: &FunctionContext, This(v): This<Value>) -> Result<Value, ExecutionError> {
    match &v {
        Value::String(s) => parse_ip(s)
            .map(|a| Value::Opaque(Arc::new(Ip(a))))
            .map_err(|e| ftx.error(e)),
        other => match opaque::<Cidr>(other) {
            Some(c) => Ok(Value::Opaque(Arc::new(Ip(c.0.addr())))),
            None => Err(ftx.error("ip() takes a string or a CIDR")),
        },
    }
}

/// `isIP(s)`.
#[allow(clippy::needless_pass_by_value)]
pub fn is_ip(s: Arc<String>) -> bool {
    parse_ip(&s).is_ok()
}

fn ip_of(ftx: &FunctionContext, v: &Value) -> Result<IpAddr, ExecutionError> {
    match v {
        Value::String(s) => parse_ip(s).map_err(|e| ftx.error(e)),
        other => opaque::<Ip>(other)
            .map(|i| i.0)
            .ok_or_else(|| ftx.error("expected an IP (from ip())")),
    }
}

/// `family()`: 4 or 6.
#[allow(clippy::needless_pass_by_value)]
pub fn family(ftx: &FunctionContext, This(v): This<Value>) -> Result<i64, ExecutionError> {
    Ok(if ip_of(ftx, &v)?.is_ipv4() { 4 } else { 6 })
}

macro_rules! ip_predicate {
    ($name:ident, |$a:ident| $body:expr) => {
        #[allow(clippy::needless_pass_by_value)]
        pub fn $name(ftx: &FunctionContext, This(v): This<Value>) -> Result<bool, ExecutionError> {
            let $a = ip_of(ftx, &v)?;
            Ok($body)
        }
    };
}
ip_predicate!(is_unspecified, |a| a.is_unspecified());
ip_predicate!(is_loopback, |a| a.is_loopback());
ip_predicate!(is_link_local_multicast, |a| match a {
    IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
    IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
});
ip_predicate!(is_link_local_unicast, |a| match a {
    IpAddr::V4(v4) => v4.is_link_local(),
    IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
});
// Go's IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast.
ip_predicate!(is_global_unicast, |a| match a {
    IpAddr::V4(v4) =>
        !(v4.is_unspecified()
            || v4.is_loopback()
            || v4.is_link_local()
            || v4.is_multicast()
            || v4.is_broadcast()),
    IpAddr::V6(v6) =>
        !(v6.is_unspecified()
            || v6.is_loopback()
            || v6.segments()[0] & 0xffc0 == 0xfe80
            || v6.is_multicast()),
});

/// `cidr(s)`.
#[allow(clippy::needless_pass_by_value)]
pub fn cidr(ftx: &FunctionContext, s: Arc<String>) -> Result<Value, ExecutionError> {
    parse_cidr(&s)
        .map(|c| Value::Opaque(Arc::new(Cidr(c))))
        .map_err(|e| ftx.error(e))
}

/// `isCIDR(s)`.
#[allow(clippy::needless_pass_by_value)]
pub fn is_cidr(s: Arc<String>) -> bool {
    parse_cidr(&s).is_ok()
}

fn cidr_of(ftx: &FunctionContext, v: &Value) -> Result<ipnet::IpNet, ExecutionError> {
    match v {
        Value::String(s) => parse_cidr(s).map_err(|e| ftx.error(e)),
        other => opaque::<Cidr>(other)
            .map(|c| c.0)
            .ok_or_else(|| ftx.error("expected a CIDR (from cidr())")),
    }
}

/// `containsIP(ip | string)`.
#[allow(clippy::needless_pass_by_value)]
pub fn contains_ip(
    ftx: &FunctionContext,
    This(v): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(cidr_of(ftx, &v)?.contains(&ip_of(ftx, &other)?))
}

/// `containsCIDR(cidr | string)`.
#[allow(clippy::needless_pass_by_value)]
pub fn contains_cidr(
    ftx: &FunctionContext,
    This(v): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(cidr_of(ftx, &v)?.contains(&cidr_of(ftx, &other)?))
}

/// `masked()`: the prefix with its host bits cleared.
#[allow(clippy::needless_pass_by_value)]
pub fn masked(ftx: &FunctionContext, This(v): This<Value>) -> Result<Value, ExecutionError> {
    Ok(Value::Opaque(Arc::new(Cidr(cidr_of(ftx, &v)?.trunc()))))
}

/// `prefixLength()`.
#[allow(clippy::needless_pass_by_value)]
pub fn prefix_length(ftx: &FunctionContext, This(v): This<Value>) -> Result<i64, ExecutionError> {
    Ok(i64::from(cidr_of(ftx, &v)?.prefix_len()))
}

/// `isSorted()`: ints, uints, doubles or strings in ascending order.
#[allow(clippy::needless_pass_by_value)]
pub fn is_sorted(
    ftx: &FunctionContext,
    This(list): This<Arc<Vec<Value>>>,
) -> Result<bool, ExecutionError> {
    for pair in list.windows(2) {
        let ordered = match (&pair[0], &pair[1]) {
            (Value::Int(a), Value::Int(b)) => a <= b,
            (Value::UInt(a), Value::UInt(b)) => a <= b,
            (Value::Float(a), Value::Float(b)) => a <= b,
            (Value::String(a), Value::String(b)) => a <= b,
            _ => {
                return Err(ftx.error(
                    "isSorted() takes a list of ints, uints, doubles or strings of one type",
                ));
            }
        };
        if !ordered {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `sum()`: of ints, uints or doubles (0 for an empty list), overflow an error.
#[allow(clippy::needless_pass_by_value)]
pub fn sum(
    ftx: &FunctionContext,
    This(list): This<Arc<Vec<Value>>>,
) -> Result<Value, ExecutionError> {
    let overflow = || ftx.error("sum() overflowed");
    let mut total = match list.first() {
        None | Some(Value::Int(_)) => Value::Int(0),
        Some(Value::UInt(_)) => Value::UInt(0),
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(_) => return Err(ftx.error("sum() takes a list of ints, uints or doubles")),
    };
    for v in list.iter() {
        total = match (&total, v) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_add(*b).ok_or_else(overflow)?),
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or_else(overflow)?)
            }
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(ftx.error("sum() takes a list of one numeric type")),
        };
    }
    Ok(total)
}

/// `find(re)`: the first match, or `''`.
#[allow(clippy::needless_pass_by_value)]
pub fn find(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<Value, ExecutionError> {
    let re = super::cel::bounded_regex(&pattern).map_err(|e| ftx.error(e))?;
    Ok(Value::String(Arc::new(
        re.find(&this)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
    )))
}

/// `findAll(re)` and `findAll(re, limit)`: every match (at most `limit` when it is not
/// negative).
#[allow(clippy::needless_pass_by_value)]
pub fn find_all(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<Value, ExecutionError> {
    let limit = match ftx.args.get(1) {
        None => None,
        Some(v) => {
            let n = v
                .downcast_ref::<cel::common::types::CelInt>()
                .map(|i| *i.inner())
                .ok_or_else(|| ftx.error("findAll's limit is an int"))?;
            usize::try_from(n).ok()
        }
    };
    let re = super::cel::bounded_regex(&pattern).map_err(|e| ftx.error(e))?;
    let found = re
        .find_iter(&this)
        .take(limit.unwrap_or(usize::MAX))
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}

#[cfg(test)]
mod tests {
    use super::super::cel::CelEnv;
    use cel::objects::Value;

    fn eval(src: &str) -> Result<Value, String> {
        let env = CelEnv::default();
        env.compile(src)
            .map_err(|e| format!("compile: {e}"))?
            .execute(&env.root_context())
            .map_err(|e| e.to_string())
    }

    /// Each expression is true, as in Kubernetes' own library tests.
    #[test]
    fn kubernetes_library_semantics() {
        for src in [
            "[1, 2, 3].isSorted() && !['b', 'a'].isSorted() && [].isSorted()",
            "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0",
            "'abc 123'.find('[0-9]+') == '123' && 'abc'.find('[0-9]') == ''",
            "'123 abc 456'.findAll('[0-9]+') == ['123', '456']",
            "'123 abc 456'.findAll('[0-9]+', 1) == ['123']",
            "isURL('https://example.com:80/path?k=v') && !isURL('not a url')",
            "url('https://example.com:80/path').getScheme() == 'https'",
            "url('https://example.com:80/path').getHost() == 'example.com:80'",
            "url('https://example.com:80/path').getHostname() == 'example.com'",
            "url('https://example.com:80/path').getPort() == '80'",
            "url('https://example.com/path').getPort() == ''",
            "url('https://[::1]:8080/').getHost() == '[::1]:8080'",
            "url('https://[::1]:8080/').getHostname() == '::1'",
            "url('/absolute/path').getEscapedPath() == '/absolute/path'",
            "url('https://example.com/?k=v&k=w').getQuery() == {'k': ['v', 'w']}",
            // As written, as Go's parser keeps it (the WHATWG parser would resolve, lowercase,
            // trim and reinterpret these).
            "url('https://h/a/../admin').getEscapedPath() == '/a/../admin'",
            "url('https://Example.COM:080/').getHost() == 'Example.COM:080'",
            "url('http://2130706433/').getHostname() == '2130706433'",
            "!isURL(' https://x') && !isURL('https:\\\\x/y') && !isURL('https://x/a b')",
            "isIP('10.0.0.1') && isIP('::1') && !isIP('10.0.0.256') && !isIP('fe80::1%eth0')",
            "!isIP('::ffff:10.0.0.1')",
            "ip('10.0.0.1').family() == 4 && ip('::1').family() == 6",
            "ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified()",
            "ip('169.254.1.1').isLinkLocalUnicast() && ip('224.0.0.1').isLinkLocalMulticast()",
            "ip('8.8.8.8').isGlobalUnicast() && !ip('127.0.0.1').isGlobalUnicast()",
            "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33')",
            "cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))",
            "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))",
            "cidr('10.1.2.3/8').prefixLength() == 8 && cidr('10.1.2.3/8').ip().family() == 4",
            "cidr('10.1.2.3/8').masked().containsCIDR('10.0.0.0/8')",
        ] {
            assert_eq!(eval(src), Ok(Value::Bool(true)), "{src}");
        }
    }

    /// What Kubernetes refuses is an error here too, with what was wrong.
    #[test]
    fn invalid_input_is_an_error_that_says_why() {
        for (src, needle) in [
            ("ip('fe80::1%eth0').family() == 6", "zone"),
            ("ip('::ffff:10.0.0.1').family() == 6", "IPv4-mapped"),
            ("cidr('10.0.0.0').prefixLength() == 0", "no prefix length"),
            ("url('no scheme').getHost() == ''", "URL parse error"),
            ("[1, 'a'].sum() == 0", "one numeric type"),
            ("'a'.find('(') == ''", "not a valid regular expression"),
        ] {
            let err = eval(src).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
    }
}
