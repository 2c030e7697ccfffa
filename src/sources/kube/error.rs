//! Why the cluster could not be read, as a kind decided from the error chain (kube's API status,
//! rustls, hyper, the socket's `io::ErrorKind`, our own deadline), never from its text. The
//! one-line message and the exit code are derived from the kind.

use std::error::Error;
use std::fmt;

/// What went wrong talking to the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterErrorKind {
    /// 401: the server rejected the credentials.
    Unauthorized,
    /// 403 on a request the whole audit needs (discovery); a 403 on one kind's list is not fatal.
    Forbidden,
    /// The TLS handshake failed: an untrusted or invalid server certificate.
    Tls,
    /// No connection: refused, no route, a name that does not resolve.
    Connect,
    /// No complete answer within the deadline.
    Timeout,
    /// Another HTTP status from the server.
    Http { status: u16 },
    /// Anything else (a credential plugin that failed, an answer over the input cap, a bug).
    Other,
}

impl ClusterErrorKind {
    /// Every cluster failure ends the run with 3: a source could not be read. (A kubeconfig that
    /// cannot work is the user's input, exit 2, and never a `ClusterError`.)
    pub fn exit_code(self) -> u8 {
        3
    }

    /// Decides the kind from an error's source chain. An `io::Error` is looked into as well as
    /// through (`source()` of a wrapping `io::Error` skips the error it wraps, which is where
    /// rustls puts its handshake failure).
    pub fn of(e: &(dyn Error + 'static)) -> Self {
        let mut found = Self::Other;
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(kube::Error::Api(s)) = err.downcast_ref::<kube::Error>() {
                return match s.code {
                    401 => Self::Unauthorized,
                    403 => Self::Forbidden,
                    status => Self::Http { status },
                };
            }
            if err.is::<super::deadline::TimedOut>() {
                return Self::Timeout;
            }
            if err.is::<rustls::Error>() {
                return Self::Tls;
            }
            if let Some(h) = err.downcast_ref::<hyper::Error>()
                && h.is_timeout()
            {
                return Self::Timeout;
            }
            if let Some(h) = err.downcast_ref::<hyper_util::client::legacy::Error>()
                && h.is_connect()
            {
                // What failed while connecting (TLS, a refusal, a timeout) may be further down.
                found = Self::Connect;
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as K;
                match io.kind() {
                    K::ConnectionRefused
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::AddrNotAvailable => return Self::Connect,
                    K::TimedOut => return Self::Timeout,
                    _ => {}
                }
                if let Some(inner) = io.get_ref() {
                    cur = Some(inner);
                    continue;
                }
            }
            cur = err.source();
        }
        found
    }
}

/// A failure that ends the run: bad credentials, TLS, no connection, no answer in time.
#[derive(Debug, thiserror::Error)]
pub struct ClusterError {
    pub kind: ClusterErrorKind,
    message: String,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ClusterError {
    /// A failure of `kind` at `server`; `detail` is the chain's last words or what the caller
    /// knows (the request that timed out). The message is derived from the kind.
    pub fn new(kind: ClusterErrorKind, server: &str, detail: &str) -> Self {
        let message = match kind {
            ClusterErrorKind::Unauthorized => {
                format!("{server}: unauthorized (401): the credentials were rejected")
            }
            ClusterErrorKind::Forbidden => format!(
                "{server}: forbidden (403): {detail}; the audit's credentials may not read the API (see deploy/rbac.yaml)"
            ),
            ClusterErrorKind::Tls => format!(
                "{server}: TLS: the server's certificate is not trusted ({detail}); check certificate-authority-data in the kubeconfig"
            ),
            ClusterErrorKind::Connect => format!("{server}: cannot connect: {detail}"),
            ClusterErrorKind::Http { status } => format!("{server}: HTTP {status}: {detail}"),
            // A timeout's detail names the bound and the flag that sets it.
            ClusterErrorKind::Timeout | ClusterErrorKind::Other => format!("{server}: {detail}"),
        };
        Self { kind, message }
    }

    /// A failure that is not about one server's answer (a list task that did not finish).
    pub fn other(message: String) -> Self {
        Self {
            kind: ClusterErrorKind::Other,
            message,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

/// The last words of an error chain (the most specific cause), for the message.
pub fn root_cause(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text = s.to_string();
        cur = s.source();
    }
    text
}

/// Whether another attempt may succeed: a connection dropped mid-request or mid-answer. A TLS
/// failure, a refusal, a status or a timeout will not change by asking again at once.
pub fn retryable(e: &(dyn Error + 'static)) -> bool {
    if ClusterErrorKind::of(e) != ClusterErrorKind::Other {
        return false;
    }
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message()
                || h.is_closed()
                || h.is_canceled()
                || h.is_body_write_aborted())
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
            ) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{ClusterError, ClusterErrorKind as K, retryable};
    use std::io;

    fn api(code: u16, message: &str) -> kube::Error {
        let status: kube::core::Status =
            serde_json::from_value(serde_json::json!({"code": code, "message": message})).unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn the_kind_comes_from_the_types_in_the_chain() {
        assert_eq!(K::of(&api(401, "Unauthorized")), K::Unauthorized);
        assert_eq!(K::of(&api(403, "forbidden")), K::Forbidden);
        // Issue 11: a server error whose text mentions a certificate (an aggregated API's x509
        // failure) was called an untrusted cluster CA, and discovery gave up without falling back.
        assert_eq!(
            K::of(&api(503, "x509: certificate signed by unknown authority")),
            K::Http { status: 503 }
        );
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "no");
        assert_eq!(K::of(&refused), K::Connect);
        // rustls's handshake failure inside an io::Error (whose source() skips it).
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(K::of(&tls), K::Tls);
        assert_eq!(
            K::of(&kube::Error::Service(Box::new(tls))),
            K::Tls,
            "through kube's error"
        );
        let deadline = super::super::deadline::TimedOut(std::time::Duration::from_secs(1));
        assert_eq!(K::of(&kube::Error::Service(Box::new(deadline))), K::Timeout);
        // Words are not a kind.
        let words = io::Error::other("connection refused: certificate expired (401)");
        assert_eq!(K::of(&words), K::Other);
    }

    #[test]
    fn only_a_dropped_connection_is_retried() {
        assert!(retryable(&io::Error::new(
            io::ErrorKind::ConnectionReset,
            "reset"
        )));
        assert!(retryable(&kube::Error::Service(Box::new(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "eof"
        )))));
        assert!(!retryable(&io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "refused"
        )));
        assert!(!retryable(&api(500, "connection reset")));
        assert!(!retryable(&io::Error::other("connection closed")));
    }

    #[test]
    fn the_message_and_exit_code_come_from_the_kind() {
        let e = ClusterError::new(K::Unauthorized, "https://127.0.0.1:1", "ignored");
        assert_eq!(
            e.to_string(),
            "https://127.0.0.1:1: unauthorized (401): the credentials were rejected"
        );
        assert_eq!(e.exit_code(), 3);
        let e = ClusterError::new(K::Tls, "https://h", "UnknownIssuer");
        assert!(e.to_string().starts_with("https://h: TLS: "), "{e}");
        let e = ClusterError::new(K::Connect, "https://h", "refused");
        assert_eq!(e.to_string(), "https://h: cannot connect: refused");
    }
}
