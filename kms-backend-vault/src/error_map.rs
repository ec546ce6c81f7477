//! The one place Vault failures become [`kms_core::Error`]s: [`to_error`] maps a [`Failure`]
//! (Vault's status and `errors` strings, a transport error, an answer that is not Vault's)
//! to an error kind and a message naming the request, on one line, and marks the failures
//! that prove the request changed nothing ([`Error::not_applied`]). [`summarize`] turns
//! Vault's `errors` strings into that one line for the other places that quote them.

use std::error::Error as StdError;

use kms_core::{Error, ErrorKind};

use crate::BACKEND;
use kms_core::one_line;

/// What an HA standby answers when it has no active node to forward to and has not forwarded
/// anything yet (OpenBao and Vault's `forwardRequest`, before `ForwardRequest` is called).
pub(crate) const STANDBY_BEFORE_FORWARDING: &str =
    "local node not active but active cluster node not found";

/// A failed Vault request, before it is mapped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Vault answered with a non-success status and its `errors` list.
    Status {
        /// The HTTP status.
        status: u16,
        /// Vault's `errors` strings (paths and reasons, never secret values).
        errors: Vec<String>,
    },
    /// The request never got an answer (connect, DNS, TLS, timeout). `address` is the
    /// configured server address (named in the message).
    Transport {
        /// The underlying error (its URL is removed: the address is named separately).
        error: reqwest::Error,
        /// The server address as configured.
        address: String,
    },
    /// The answer could not be interpreted (what was wrong, never the body itself).
    Malformed(String),
    /// The server answered, but not as Vault does (a 4xx without Vault's JSON error body,
    /// HTTP against an HTTPS listener), or Vault says the namespace does not exist: a wrong
    /// address or namespace. The string is the hint.
    NotVault(String),
}

/// Maps a [`Failure`] to an [`Error`]; `what` names the request (`"get secret/data/app/db"`).
///
/// | Vault says | Kind |
/// |---|---|
/// | 404 "no handler for route" (nothing is mounted there) | `Configuration` naming the mount |
/// | 404 otherwise | `NotFound` |
/// | 400 "check-and-set parameter did not match" | `Conflict` |
/// | 400 "check-and-set parameter required" (the mount or key sets `cas_required`) | `Configuration` |
/// | 400 otherwise | `InvalidInput` |
/// | 401 | `Unauthenticated` |
/// | 403 (after classification, see the client) | `PermissionDenied` |
/// | 412 "required index state not present": a consistency delay Vault says to retry | `Unavailable` (retryable) |
/// | 307/308 (a cluster client follows no redirects): a standby pointed at an active node no node reached | `Unavailable` |
/// | 429 | `RateLimited` |
/// | 500, 502, 503 (sealed, standby), 504 | `Unavailable` |
/// | timeout | `Timeout` |
/// | connect / DNS / TLS failure (the message names the address and the cause) | `Unavailable` |
/// | a 4xx that is not Vault's JSON, HTTP against HTTPS | `Configuration` (wrong address) |
/// | malformed JSON, unexpected shape | `InvalidData` |
/// | the request could not be built (a header value such as the token is not valid) | `Configuration` |
///
/// **Failures that prove nothing was applied** are marked with [`Error::not_applied`] (the
/// refusal kinds, `PermissionDenied`, `RateLimited`, `Conflict` …, say so on their own):
///
/// - 503 "Vault is sealed": Vault checks the seal under its state lock before it handles a
///   request, and sealing waits for every request in flight, so a sealed answer always comes
///   before the request was handled;
/// - 500 "local node not active but active cluster node not found": a standby with no active
///   node to forward to, answered before it forwarded anything;
/// - 307/308: a standby that redirects has not handled the request;
/// - 412 "required index state not present": a precondition the node checks before handling
///   the request (RFC 9110: a failed precondition means the method was not performed);
/// - a connect, DNS or TLS-handshake failure (reqwest's `is_connect`): the request was never
///   sent;
/// - a request the client could not build (never sent).
///
/// Not marked, so the outcome stays unknown: a timeout, a connection lost or reset after the
/// request was sent, an unreadable answer, a 500/502/504, and a standby's 503 "no active
/// Vault instance found" (a standby also answers that after a forward to the active node
/// failed, when the active node may have applied the request).
///
/// Every message is one line: Vault's error list and go-multierror's text are joined with
/// `"; "`, and no control character from the server reaches it (see [`summarize`]).
pub(crate) fn to_error(failure: Failure, what: &str) -> Error {
    match failure {
        Failure::Status { status, errors } => {
            let reason = summarize(&errors);
            let kind = match status {
                // Vault's router: nothing is mounted there (a mount removed after the store
                // checked it), not a missing key.
                404 if reason.contains("no handler for route") => ErrorKind::Configuration,
                404 => ErrorKind::NotFound,
                412 => ErrorKind::Unavailable,
                400 if reason.contains("check-and-set parameter required") => {
                    ErrorKind::Configuration
                }
                400 if reason.contains("check-and-set") => ErrorKind::Conflict,
                400 => ErrorKind::InvalidInput,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                429 => ErrorKind::RateLimited,
                // A cluster client follows no redirects: a standby that could not forward
                // pointed at the active node, and no node could take the request.
                307 | 308 => ErrorKind::Unavailable,
                500 | 502 | 503 | 504 => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            };
            let note = if reason.contains("sealed") {
                " (sealed)"
            } else if matches!(status, 307 | 308) {
                " (a standby redirected to the active node; no node took the request)"
            } else if status == 412 {
                " (consistency delay; Vault says to retry)"
            } else if status == 404 && kind == ErrorKind::Configuration {
                " (nothing is mounted at this path: check the mount setting)"
            } else if kind == ErrorKind::Configuration {
                " (the mount or key requires check-and-set: use store_cas)"
            } else {
                ""
            };
            let message = if reason.is_empty() {
                format!("{what}: HTTP {status}{note}")
            } else {
                format!("{what}: HTTP {status}{note}: {reason}")
            };
            let refused = match status {
                503 => errors.iter().any(|e| e.contains("Vault is sealed")),
                500 => errors.iter().any(|e| e.trim() == STANDBY_BEFORE_FORWARDING),
                412 | 307 | 308 => true,
                _ => false,
            };
            let error = Error::new(kind, one_line(&message))
                .with_backend(BACKEND)
                .with_code(status.to_string());
            if refused { error.not_applied() } else { error }
        }
        Failure::Transport { error, address } => {
            let cause = transport_cause(&error);
            let message = one_line(&format!("{what}: {address}: {cause}"));
            if error.is_builder() {
                // Refused by the client before anything was sent: nothing to retry.
                return Error::new(ErrorKind::Configuration, message)
                    .with_backend(BACKEND)
                    .with_source(error.without_url())
                    .before_backend()
                    .not_applied();
            }
            let kind = if error.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            // Connecting (TCP, DNS, TLS handshake) comes before the request is written.
            let unsent = error.is_connect();
            // The message names the address and the cause; the source keeps reqwest's chain
            // (no headers or bodies in it; the URL is removed, the address is in the message).
            let mapped = Error::new(kind, message)
                .with_backend(BACKEND)
                .with_source(error.without_url());
            if unsent { mapped.not_applied() } else { mapped }
        }
        Failure::Malformed(reason) => Error::new(
            ErrorKind::InvalidData,
            one_line(&format!("{what}: {reason}")),
        )
        .with_backend(BACKEND),
        Failure::NotVault(hint) => Error::new(
            ErrorKind::Configuration,
            one_line(&format!("{what}: {hint}")),
        )
        .with_backend(BACKEND),
    }
}

/// The cause of a transport failure in words a newcomer can act on: refused, DNS, TLS
/// against a plain-HTTP server, an untrusted certificate, a timeout.
fn transport_cause(error: &reqwest::Error) -> String {
    if error.is_builder() {
        return "the request could not be built (a header value such as the token or the \
                namespace is not valid in HTTP)"
            .into();
    }
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused (is Vault running and listening there?)".into();
                }
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                _ => {}
            }
        }
        chain.push(s.to_string().to_lowercase());
        source = s.source();
    }
    let all = chain.join(": ");
    if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
        || all.contains("no address associated")
    {
        "cannot resolve the host name (DNS)".into()
    } else if all.contains("invalidcontenttype")
        || all.contains("corrupt message")
        || all.contains("wrong version number")
    {
        "TLS handshake failed: the server does not speak TLS (use an http:// address?)".into()
    } else if all.contains("certificate") || all.contains("unknownissuer") {
        "TLS certificate not trusted (add its CA with ca_cert_pem or VAULT_CACERT)".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        "transport error".into()
    }
}

/// Vault's error strings on one line, joined with `"; "` and bounded (they hold paths and
/// reasons, not values). Each string may be go-multierror's text (`"1 error occurred:\n\t*
/// permission denied\n\n"`), which becomes its items; no control character is kept.
pub(crate) fn summarize(errors: &[String]) -> String {
    let mut joined = errors
        .iter()
        .map(|e| one_line(&flatten_multierror(e)))
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.len() > 300 {
        let mut cut = 300;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push('…');
    }
    joined
}

/// go-multierror's text (`"2 errors occurred:\n\t* a\n\t* b\n\n"`, after a prefix or
/// nested in an item) as its items joined with `"; "`: `"a; b"`. A header that follows a
/// prefix (`"write failed: 1 error occurred:\n\t* disk full"`) joins with a space:
/// `"write failed: disk full"`. Other text is returned as it is, less trailing whitespace.
fn flatten_multierror(text: &str) -> String {
    let mut out = String::new();
    let mut after_header = false;
    for part in text.split("\n\t* ") {
        let part = part.trim_end_matches(|c: char| c.is_whitespace() || c.is_control());
        let (body, header) = match strip_header(part) {
            Some(before) => (before, true),
            None => (part, false),
        };
        if !body.is_empty() {
            if !out.is_empty() {
                out.push_str(if after_header { " " } else { "; " });
            }
            out.push_str(body);
        }
        after_header = header;
    }
    out
}

/// `part` without a trailing go-multierror header (`"3 errors occurred:"`), if it ends with
/// one; what came before it, trimmed.
fn strip_header(part: &str) -> Option<&str> {
    let rest = part.strip_suffix(" occurred:")?;
    let rest = rest
        .strip_suffix(" errors")
        .or_else(|| rest.strip_suffix(" error"))?;
    let number = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    if number.len() == rest.len() || !(number.is_empty() || number.ends_with(char::is_whitespace)) {
        return None;
    }
    Some(number.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, errors: &[&str]) -> ErrorKind {
        to_error(
            Failure::Status {
                status,
                errors: errors.iter().map(|s| s.to_string()).collect(),
            },
            "op",
        )
        .kind()
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status(404, &[]), ErrorKind::NotFound);
        // Vault's router: nothing mounted there, not a missing key.
        assert_eq!(
            status(
                404,
                &["no handler for route \"gone/data/k\". route entry not found."]
            ),
            ErrorKind::Configuration
        );
        assert_eq!(
            status(403, &["permission denied"]),
            ErrorKind::PermissionDenied
        );
        assert_eq!(status(401, &[]), ErrorKind::Unauthenticated);
        assert_eq!(status(429, &[]), ErrorKind::RateLimited);
        assert_eq!(status(500, &[]), ErrorKind::Unavailable);
        assert_eq!(status(502, &[]), ErrorKind::Unavailable);
        assert_eq!(status(503, &["Vault is sealed"]), ErrorKind::Unavailable);
        // 412: a consistency delay Vault says to retry, not a lost race.
        assert_eq!(
            status(412, &["required index state not present"]),
            ErrorKind::Unavailable
        );
        assert!(ErrorKind::Unavailable.is_retryable());
        assert_eq!(
            status(400, &["check-and-set parameter required for this call"]),
            ErrorKind::Configuration
        );
        assert_eq!(
            status(
                400,
                &["check-and-set parameter did not match the current version"]
            ),
            ErrorKind::Conflict
        );
        assert_eq!(status(400, &["bad"]), ErrorKind::InvalidInput);
        assert_eq!(status(418, &[]), ErrorKind::Backend);
    }

    #[test]
    fn messages_are_bounded_and_name_the_request() {
        let long = "x".repeat(1000);
        let err = to_error(
            Failure::Status {
                status: 503,
                errors: vec!["Vault is sealed".into(), long],
            },
            "get secret/data/a",
        );
        let msg = err.to_string();
        assert!(msg.contains("get secret/data/a"), "{msg}");
        assert!(msg.contains("(sealed)"), "{msg}");
        assert!(msg.len() < 500, "{msg}");
        assert_eq!(err.backend(), Some("vault"));
        assert_eq!(err.code(), Some("503"));
    }

    #[test]
    fn malformed_is_invalid_data() {
        let err = to_error(Failure::Malformed("not JSON".into()), "op");
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }

    fn mapped(status: u16, errors: &[&str]) -> Error {
        to_error(
            Failure::Status {
                status,
                errors: errors.iter().map(|s| s.to_string()).collect(),
            },
            "store secret/data/a",
        )
    }

    /// No character that could split or disguise a log line.
    fn assert_one_line(err: &Error) {
        let msg = err.message();
        assert!(
            !msg.chars()
                .any(|c| c.is_control() || ('\u{2028}'..='\u{202E}').contains(&c)),
            "{msg:?}"
        );
    }

    #[test]
    fn refusals_that_prove_nothing_was_applied() {
        // OpenBao 2.7.2 and Vault answer a sealed server this way (seen on `bao operator seal`).
        let sealed = mapped(503, &["Vault is sealed"]);
        assert_eq!(sealed.kind(), ErrorKind::Unavailable);
        assert!(sealed.proves_not_applied(), "{sealed:?}");
        assert!(!sealed.never_reached_backend());
        // A standby with no active node, before it forwarded anything.
        let standby = mapped(500, &[STANDBY_BEFORE_FORWARDING]);
        assert!(standby.proves_not_applied(), "{standby:?}");
        // A required index state the node does not have: checked before handling.
        assert!(mapped(412, &["required index state not present"]).proves_not_applied());
        // Refusal kinds say so on their own.
        assert!(mapped(429, &["rate limit quota exceeded"]).proves_not_applied());
        assert!(
            mapped(403, &["1 error occurred:\n\t* permission denied\n\n"]).proves_not_applied()
        );
        assert!(
            mapped(
                400,
                &["check-and-set parameter did not match the current version"]
            )
            .proves_not_applied()
        );
    }

    #[test]
    fn answers_that_leave_the_outcome_unknown() {
        for (status, errors) in [
            // A standby answers this also after a forward to the active node failed.
            (503, &["no active Vault instance found"][..]),
            (503, &["node is not active"][..]),
            (503, &[][..]),
            // "sealed" in another 503 is not Vault's seal check.
            (503, &["upstream sealed the deal"][..]),
            (500, &["internal error"][..]),
            (500, &["Vault is sealed"][..]),
            (502, &[][..]),
            (504, &[][..]),
            (418, &[][..]),
        ] {
            let err = mapped(status, errors);
            assert!(!err.proves_not_applied(), "{status} {errors:?}: {err:?}");
        }
        assert!(!to_error(Failure::Malformed("bad".into()), "op").proves_not_applied());
    }

    #[test]
    fn multierror_text_becomes_one_line() {
        assert_eq!(
            flatten_multierror("1 error occurred:\n\t* permission denied\n\n"),
            "permission denied"
        );
        assert_eq!(
            flatten_multierror("2 errors occurred:\n\t* a\n\t* b\n\n"),
            "a; b"
        );
        assert_eq!(
            flatten_multierror("write failed: 1 error occurred:\n\t* disk full\n\n"),
            "write failed: disk full"
        );
        assert_eq!(
            flatten_multierror(
                "2 errors occurred:\n\t* 1 error occurred:\n\t* inner\n\n\n\t* b\n\n"
            ),
            "inner; b"
        );
        assert_eq!(flatten_multierror("permission denied"), "permission denied");
        // Not a header: no number, or a word glued to it.
        assert_eq!(
            flatten_multierror("an error occurred:"),
            "an error occurred:"
        );
        assert_eq!(
            flatten_multierror("x1 error occurred:"),
            "x1 error occurred:"
        );

        let err = mapped(403, &["1 error occurred:\n\t* permission denied\n\n"]);
        assert_eq!(
            err.message(),
            "store secret/data/a: HTTP 403: permission denied"
        );
        let err = mapped(400, &["2 errors occurred:\n\t* a\n\t* b\n\n", "third"]);
        assert_eq!(err.message(), "store secret/data/a: HTTP 400: a; b; third");
        assert_eq!(
            summarize(&["1 error occurred:\n\t* invalid role ID\n\n".into()]),
            "invalid role ID"
        );
    }

    #[test]
    fn no_control_character_from_the_server_reaches_a_message() {
        let hostile = "line one\r\nline two\tTAB\u{1b}[2J\u{7}\u{0}\u{85}\u{2028}x\u{202E}gpj.exe";
        for err in [
            mapped(503, &[hostile]),
            mapped(400, &[hostile, hostile]),
            mapped(404, &[hostile]),
            to_error(Failure::Malformed(hostile.into()), "op"),
            to_error(Failure::NotVault(hostile.into()), "op"),
        ] {
            assert_one_line(&err);
            assert!(err.message().contains("line one line two TAB"), "{err:?}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_and_an_unbuildable_request_prove_nothing_was_sent() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let refused = reqwest::Client::new()
            .get(format!("http://{addr}/v1/x"))
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect());
        let err = to_error(
            Failure::Transport {
                error: refused,
                address: format!("http://{addr}"),
            },
            "store secret/data/a",
        );
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.proves_not_applied(), "{err:?}");
        assert!(err.message().contains("connection refused"), "{err}");
        assert_one_line(&err);

        // A header value HTTP cannot carry: the client refuses to send the request.
        let unbuildable = reqwest::Client::new()
            .get(format!("http://{addr}/v1/x"))
            .header("X-Vault-Token", "s3cr\nET")
            .send()
            .await
            .unwrap_err();
        assert!(unbuildable.is_builder());
        let err = to_error(
            Failure::Transport {
                error: unbuildable,
                address: format!("http://{addr}"),
            },
            "store secret/data/a",
        );
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(
            err.proves_not_applied() && err.never_reached_backend(),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(err.message().contains("could not be built"), "{err}");
        assert!(!err.to_string().contains("s3cr"), "{err}");
    }
}
