//! The one place AWS SDK failures become [`kms_core::Error`]s.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use kms_core::{Error, ErrorKind};

/// The backend label of the Secrets Manager store (errors and metrics).
pub(crate) const SECRETS_MANAGER: &str = "aws";
/// The provider label of the KMS crypto provider (errors and metrics).
pub(crate) const KMS: &str = "aws_kms";

/// The call that failed, where the same AWS answer means different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// A read (`GetSecretValue`): a secret scheduled for deletion is not found.
    Read,
    /// A write (`PutSecretValue`, `CreateSecret`): a secret scheduled for deletion is a
    /// conflict the caller must resolve (restore it, or wait for the deletion).
    Write,
    /// `DeleteSecret`: a secret already scheduled for deletion is not found.
    Delete,
    /// Anything else (`ListSecrets`, health probes, KMS calls).
    Other,
}

/// An SDK failure flattened to what the mapping needs (no generics, no response body).
#[derive(Debug)]
pub(crate) struct Failure {
    class: Class,
    code: Option<String>,
    message: Option<String>,
    status: Option<u16>,
    /// The SDK's own description of a failure without a service answer (dispatch, timeout,
    /// construction, unparseable response). Never holds request bodies.
    detail: String,
}

/// Why the credential chain gave no credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CredentialsFailure {
    /// No provider in the chain had credentials.
    NotLoaded,
    /// A provider (IMDS, STS, SSO) did not answer in time.
    TimedOut,
    /// A provider is misconfigured (profile syntax, role loop).
    InvalidConfiguration,
    /// A provider failed (STS 5xx, unreadable file).
    ProviderError,
    /// Anything else.
    Other,
}

impl CredentialsFailure {
    /// Finds a credentials failure in an error's source chain.
    fn find(err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        use aws_credential_types::provider::error::CredentialsError as E;
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(c) = e.downcast_ref::<E>() {
                return Some(match c {
                    E::CredentialsNotLoaded(_) => Self::NotLoaded,
                    E::ProviderTimedOut(_) => Self::TimedOut,
                    E::InvalidConfiguration(_) => Self::InvalidConfiguration,
                    E::ProviderError(_) => Self::ProviderError,
                    _ => Self::Other,
                });
            }
            next = e.source();
        }
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The request could not be built (missing region, credentials, bad input).
    Construction,
    /// An SDK timeout (operation or attempt timeout) elapsed.
    Timeout,
    /// The request was not answered: connect, TLS, I/O; `timeout` when a connect/read
    /// timeout fired.
    Dispatch { timeout: bool },
    /// The request could not be signed: resolving credentials failed.
    Credentials(CredentialsFailure),
    /// An answer came back but could not be parsed.
    Response,
    /// The service answered with an error.
    Service,
}

impl<E, R> From<SdkError<E, R>> for Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        let status = err.raw_response().map(HasStatus::status);
        let (code, message) = (
            err.code().map(str::to_owned),
            err.message().map(str::to_owned),
        );
        let class = match &err {
            SdkError::ConstructionFailure(_) => Class::Construction,
            SdkError::TimeoutError(_) => Class::Timeout,
            SdkError::DispatchFailure(d) => match CredentialsFailure::find(&err) {
                Some(c) => Class::Credentials(c),
                None if d.is_user() => Class::Construction,
                None => Class::Dispatch {
                    timeout: d.is_timeout(),
                },
            },
            SdkError::ResponseError(_) => Class::Response,
            SdkError::ServiceError(_) => Class::Service,
            _ => Class::Response,
        };
        let detail = match class {
            Class::Service => String::new(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        Self {
            class,
            code,
            message,
            status,
            detail,
        }
    }
}

/// The HTTP status of a raw response, for the mapping.
pub(crate) trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Keeps messages short: an AWS message is a sentence or an ARN, never a secret, but a proxy
/// or emulator could answer with anything.
fn cap(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Whether an `InvalidRequestException` says the secret is scheduled for deletion (AWS:
/// "…because it was marked for deletion", moto: "…currently marked deleted").
fn scheduled_for_deletion(code: &str, message: &str) -> bool {
    code == "InvalidRequestException"
        && (message.contains("marked for deletion")
            || message.contains("marked deleted")
            || message.contains("scheduled for deletion"))
}

/// The kind an AWS error code means. Codes of both services (Secrets Manager, KMS) and the
/// common ones every AWS JSON service returns.
fn kind_of(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "ResourceNotFoundException" | "NotFoundException" => ErrorKind::NotFound,
        "AccessDeniedException" | "AccessDenied" => ErrorKind::PermissionDenied,
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => ErrorKind::Unauthenticated,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException" => ErrorKind::RateLimited,
        "InternalServiceError"
        | "InternalServiceErrorException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "KMSInternalException"
        | "KeyUnavailableException" => ErrorKind::Unavailable,
        "DependencyTimeoutException" | "RequestTimeout" | "RequestTimeoutException" => {
            ErrorKind::Timeout
        }
        "ResourceExistsException" | "AlreadyExistsException" => ErrorKind::Conflict,
        "InvalidCiphertextException" | "IncorrectKeyException" => ErrorKind::InvalidData,
        // A disabled key, or one pending deletion or import: only an operator can fix it.
        "DisabledException" | "KMSInvalidStateException" => ErrorKind::Unavailable,
        "InvalidParameterException"
        | "InvalidRequestException"
        | "InvalidKeyUsageException"
        | "InvalidGrantTokenException"
        | "ValidationException"
        | "MalformedPolicyDocumentException"
        | "DecryptionFailure"
        | "EncryptionFailure" => ErrorKind::InvalidInput,
        _ => return None,
    })
}

/// Maps an SDK failure of `call` to an [`Error`] of `backend`; `what` names the request
/// (`"GetSecretValue app/db"`), never a value.
///
/// | AWS says | Kind |
/// |---|---|
/// | `ResourceNotFoundException`, KMS `NotFoundException` | `NotFound` |
/// | `AccessDeniedException` | `PermissionDenied` |
/// | `UnrecognizedClientException`, `ExpiredTokenException`, bad signature | `Unauthenticated` |
/// | `ThrottlingException`, `LimitExceededException`, HTTP 429 | `RateLimited` (retryable) |
/// | `InternalServiceError`, `KMSInternalException`, other 5xx | `Unavailable` (retryable) |
/// | KMS `DisabledException`, `KMSInvalidStateException` | `Unavailable`, marked exhausted (retrying cannot help) |
/// | `InvalidRequestException` "marked for deletion" | `NotFound` on reads and deletes, `Conflict` on writes |
/// | `ResourceExistsException` | `Conflict` |
/// | KMS `InvalidCiphertextException`, `IncorrectKeyException` | `InvalidData` |
/// | `InvalidParameterException`, other `InvalidRequestException`, validation | `InvalidInput` |
/// | SDK timeout, connect/read timeout | `Timeout` (retryable) |
/// | connect, TLS or I/O failure | `Unavailable` (retryable) |
/// | an answer that does not parse | `InvalidData` |
/// | no credentials in the chain | `Unauthenticated` |
/// | a credential provider timed out / failed / is misconfigured | `Timeout` / `Unavailable` / `Configuration` |
/// | the request could not be built (no region, bad input) | `Configuration` |
/// | anything else | `Backend`, with the AWS error code |
pub(crate) fn to_error(failure: Failure, call: Call, backend: &'static str, what: &str) -> Error {
    let Failure {
        class,
        code,
        message,
        status,
        detail,
    } = failure;
    let (message, detail) = (message.map(|m| cap(&m)), cap(&detail));
    let (kind, text) = match class {
        Class::Construction => (
            ErrorKind::Configuration,
            format!("{what}: request could not be built: {detail}"),
        ),
        Class::Timeout | Class::Dispatch { timeout: true } => {
            (ErrorKind::Timeout, format!("{what}: timed out: {detail}"))
        }
        Class::Dispatch { timeout: false } => (
            ErrorKind::Unavailable,
            format!("{what}: no answer: {detail}"),
        ),
        Class::Credentials(c) => {
            let kind = match c {
                CredentialsFailure::NotLoaded | CredentialsFailure::Other => {
                    ErrorKind::Unauthenticated
                }
                CredentialsFailure::TimedOut => ErrorKind::Timeout,
                CredentialsFailure::InvalidConfiguration => ErrorKind::Configuration,
                CredentialsFailure::ProviderError => ErrorKind::Unavailable,
            };
            (kind, format!("{what}: no credentials: {detail}"))
        }
        Class::Response => (
            ErrorKind::InvalidData,
            format!("{what}: malformed response: {detail}"),
        ),
        Class::Service => {
            let code_str = code.as_deref().unwrap_or("");
            let msg = message.as_deref().unwrap_or("");
            let kind = if scheduled_for_deletion(code_str, msg) {
                match call {
                    Call::Read | Call::Delete => ErrorKind::NotFound,
                    Call::Write | Call::Other => ErrorKind::Conflict,
                }
            } else {
                kind_of(code_str).unwrap_or(match status {
                    Some(429) => ErrorKind::RateLimited,
                    Some(500..=599) => ErrorKind::Unavailable,
                    // An error answer with no code we know that did not parse as one.
                    _ if code.is_none() => ErrorKind::InvalidData,
                    _ => ErrorKind::Backend,
                })
            };
            let mut text = what.to_owned();
            if scheduled_for_deletion(code_str, msg) {
                text.push_str(": the secret is scheduled for deletion");
                if call == Call::Write {
                    text.push_str(
                        " (restore it with RestoreSecret, or build the store with \
                         `restore_deleted(true)`, or wait until the recovery window ends)",
                    );
                }
            } else if matches!(
                code_str,
                "InvalidCiphertextException" | "IncorrectKeyException"
            ) {
                text.push_str(
                    ": the ciphertext does not decrypt under this key and encryption context \
                     (altered, from another key, or another context)",
                );
            } else if !msg.is_empty() {
                text.push_str(": ");
                text.push_str(msg);
            } else if let Some(status) = status {
                text.push_str(&format!(": HTTP {status}"));
            }
            (kind, text)
        }
    };
    let mut error = Error::new(kind, text).with_backend(backend);
    if let Some(code) = code.or_else(|| status.map(|s| format!("HTTP {s}"))) {
        error = error.with_code(code);
    }
    if matches!(
        error.code(),
        Some("DisabledException" | "KMSInvalidStateException")
    ) {
        error = error.exhausted();
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: Option<&str>, message: &str, status: u16) -> Failure {
        Failure {
            class: Class::Service,
            code: code.map(str::to_owned),
            message: Some(message.to_owned()),
            status: Some(status),
            detail: String::new(),
        }
    }

    fn kind(code: &str, status: u16) -> ErrorKind {
        to_error(service(Some(code), "m", status), Call::Other, KMS, "x").kind()
    }

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(kind("ResourceNotFoundException", 400), ErrorKind::NotFound);
        assert_eq!(kind("NotFoundException", 400), ErrorKind::NotFound);
        assert_eq!(
            kind("AccessDeniedException", 400),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind("UnrecognizedClientException", 400),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            kind("ExpiredTokenException", 400),
            ErrorKind::Unauthenticated
        );
        assert_eq!(kind("ThrottlingException", 400), ErrorKind::RateLimited);
        assert_eq!(kind("LimitExceededException", 400), ErrorKind::RateLimited);
        assert_eq!(kind("InternalServiceError", 500), ErrorKind::Unavailable);
        assert_eq!(kind("KMSInternalException", 500), ErrorKind::Unavailable);
        assert_eq!(
            kind("InvalidCiphertextException", 400),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind("InvalidParameterException", 400),
            ErrorKind::InvalidInput
        );
        assert_eq!(kind("SomethingNew", 400), ErrorKind::Backend);
        assert_eq!(kind("SomethingNew", 503), ErrorKind::Unavailable);
        assert_eq!(kind("SomethingNew", 429), ErrorKind::RateLimited);
    }

    #[test]
    fn disabled_keys_are_not_retried() {
        let err = to_error(
            service(Some("DisabledException"), "key is disabled", 400),
            Call::Other,
            KMS,
            "Encrypt",
        );
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(!err.is_retryable(), "{err}");
        assert_eq!(err.code(), Some("DisabledException"));
    }

    #[test]
    fn scheduled_deletion_depends_on_the_call() {
        let msg =
            "You can't perform this operation on the secret because it was marked for deletion.";
        let f = || service(Some("InvalidRequestException"), msg, 400);
        assert_eq!(
            to_error(f(), Call::Read, SECRETS_MANAGER, "get").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            to_error(f(), Call::Delete, SECRETS_MANAGER, "delete").kind(),
            ErrorKind::NotFound
        );
        let write = to_error(f(), Call::Write, SECRETS_MANAGER, "PutSecretValue app/db");
        assert_eq!(write.kind(), ErrorKind::Conflict);
        assert!(
            write.message().contains("scheduled for deletion"),
            "{write}"
        );
        assert!(write.message().contains("restore_deleted"), "{write}");
        // Any other invalid request stays invalid input.
        let other = service(Some("InvalidRequestException"), "bad", 400);
        assert_eq!(
            to_error(other, Call::Write, SECRETS_MANAGER, "x").kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn long_messages_are_capped() {
        let long = "é".repeat(1000);
        let err = to_error(
            service(Some("SomethingNew"), &long, 400),
            Call::Other,
            SECRETS_MANAGER,
            "x",
        );
        assert!(err.message().len() < 400, "{}", err.message().len());
        assert_eq!(err.backend(), Some("aws"));
    }
}
