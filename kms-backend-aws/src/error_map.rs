//! The one place AWS SDK failures become [`kms_core::Error`]s: [`to_error`], and
//! [`to_error_and_condition`] for the Secrets Manager calls whose answer the store acts on.
//!
//! Codes first: an AWS error code decides the kind ([`kind_of`]). Where one code covers several
//! conditions (`InvalidRequestException` is both "bad request" and "scheduled for deletion"),
//! the condition is told apart by its wording, and every documented wording of a condition is
//! one row of [`WORDINGS`], each with a test.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use kms_core::{Error, ErrorKind};

use kms_core::one_line;

/// The call that failed, where the same AWS answer means different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// A read (`GetSecretValue`): a secret scheduled for deletion is not found.
    Read,
    /// `PutSecretValue`: a secret scheduled for deletion is a conflict the caller must resolve
    /// (restore it, or wait for the deletion).
    Write,
    /// `CreateSecret`: as [`Write`](Self::Write); and since the secret is the thing being
    /// created, a "not found" answer is about a dependency the store's settings name (its KMS
    /// key), never the secret: [`ErrorKind::Configuration`].
    Create,
    /// `DeleteSecret`, `DescribeSecret` before a delete: a secret already scheduled for
    /// deletion is not found.
    Delete,
    /// A KMS call of the crypto provider. The only resource it names is the provider's own
    /// KMS key, so "not found" means the provider is misconfigured: [`ErrorKind::Configuration`],
    /// never the kind that says "your key does not exist" about the caller's secret.
    Kms,
    /// Anything else (`ListSecrets`, `RestoreSecret`, health probes).
    Other,
}

/// A condition AWS reports under an error code it shares with other conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Condition {
    /// The secret is scheduled for deletion, or its deletion is still under way.
    ScheduledForDeletion,
    /// No region was configured, so the request could not be signed.
    MissingRegion,
    /// A version with the request's `ClientRequestToken` already exists, with another value:
    /// with a token unique to one logical write, an earlier attempt of this write landed.
    /// On `PutSecretValue` every `ResourceExistsException` means this (a put creates no
    /// secret, only a version), whatever its wording.
    TokenInUse,
}

/// One documented wording of a [`Condition`].
#[derive(Debug)]
struct Wording {
    /// The AWS error code the wording comes with; `None`: the SDK's own (non-service) error.
    code: Option<&'static str>,
    /// A phrase of the message, lowercase, with straight apostrophes (AWS sends both `'` and
    /// `’`; messages are normalised before matching). Every phrase holds a space: AWS's
    /// messages quote secret names and ARNs, which cannot hold one, so no name can pass for a
    /// wording (a secret named `ClientRequestToken` is not a token in use).
    phrase: &'static str,
    condition: Condition,
    /// Where the wording comes from.
    #[allow(dead_code, reason = "the table's documentation; checked by the tests")]
    source: &'static str,
}

/// Every documented wording of every [`Condition`], in one table (a test per row).
const WORDINGS: &[Wording] = &[
    Wording {
        code: Some("InvalidRequestException"),
        phrase: "because it was marked for deletion",
        condition: Condition::ScheduledForDeletion,
        source: "AWS: GetSecretValue, PutSecretValue, DeleteSecret of a secret in its recovery \
                 window (\"You can't perform this operation on the secret because it was marked \
                 for deletion.\")",
    },
    Wording {
        code: Some("InvalidRequestException"),
        phrase: "because it was deleted",
        condition: Condition::ScheduledForDeletion,
        source: "AWS: CreateSecret and PutSecretValue while a deletion is under way (\"You can't \
                 perform this operation on the secret because it was deleted.\"; \
                 terraform-provider-aws matches it)",
    },
    Wording {
        code: Some("InvalidRequestException"),
        phrase: "currently marked deleted",
        condition: Condition::ScheduledForDeletion,
        source: "the Secrets Manager API reference's InvalidRequestException (\"You tried to \
                 perform the operation on a secret that's currently marked deleted.\"); moto",
    },
    Wording {
        code: Some("InvalidRequestException"),
        phrase: "scheduled for deletion",
        condition: Condition::ScheduledForDeletion,
        source: "the API reference's list of InvalidRequestException causes (\"The secret is \
                 scheduled for deletion.\")",
    },
    Wording {
        code: Some("ResourceExistsException"),
        phrase: "use clientrequesttoken",
        condition: Condition::TokenInUse,
        source: "CreateSecret and PutSecretValue with a token already used for a version with \
                 another value (\"You can't use ClientRequestToken … because that value is \
                 already in use for a version of secret …\"; moto sends AWS's wording, \
                 checked against AWS by moto's maintainers)",
    },
    Wording {
        code: Some("ResourceExistsException"),
        phrase: "modify an existing version",
        condition: Condition::TokenInUse,
        source: "the API reference's PutSecretValue: a version with this token exists and its \
                 value differs, \"you cannot modify an existing version\"",
    },
    Wording {
        code: None,
        phrase: "missing signing region",
        condition: Condition::MissingRegion,
        source: "aws-runtime's SigV4 signer when the SdkConfig has no region",
    },
];

/// The condition `message` states, for an answer with `code` (`None`: not a service answer).
fn condition_of(code: Option<&str>, message: &str) -> Option<Condition> {
    let normal = message
        .replace(['\u{2019}', '\u{2018}'], "'")
        .to_lowercase();
    WORDINGS
        .iter()
        .find(|w| w.code == code && normal.contains(w.phrase))
        .map(|w| w.condition)
}

/// A mapped failure: the error, and the condition the store may act on (restore a secret
/// scheduled for deletion).
#[derive(Debug)]
pub(crate) struct Mapped {
    pub(crate) error: Error,
    pub(crate) condition: Option<Condition>,
}

impl From<Mapped> for Error {
    fn from(m: Mapped) -> Self {
        m.error
    }
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
    /// The request never left this process: it could not be built or signed, or the
    /// connection it needed could not be made (TCP, DNS, TLS handshake).
    unsent: bool,
    /// The SDK made one attempt (its retries are off), so `unsent` speaks for the whole call.
    one_attempt: bool,
}

impl Failure {
    /// Says whether the SDK client that failed makes one attempt per call (its retries are
    /// off, this crate's default): only then does a request that was not sent prove the call
    /// changed nothing; with SDK retries, an earlier attempt may have been sent. Without this,
    /// a failure is taken to come from a client that may retry.
    pub(crate) fn one_attempt(mut self, one_attempt: bool) -> Self {
        self.one_attempt = one_attempt;
        self
    }
}

/// Whether a client with `retry` makes one attempt per call (`None`: the SDK's default,
/// which retries).
pub(crate) fn makes_one_attempt(retry: Option<&aws_config::retry::RetryConfig>) -> bool {
    retry.is_some_and(|r| r.max_attempts() <= 1)
}

/// Whether `err`'s source chain holds hyper-util's connect error: the SDK's HTTP client
/// failed to connect (TCP, DNS, TLS handshake), so nothing was written to the connection.
/// A timeout or an I/O failure after connecting is not one.
fn failed_to_connect(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        next = e.source();
    }
    false
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
            _ => causes(&err),
        };
        let unsent = match (&err, class) {
            (_, Class::Construction | Class::Credentials(_)) => true,
            (SdkError::DispatchFailure(_), _) => failed_to_connect(&err),
            _ => false,
        };
        Self {
            class,
            code,
            message,
            status,
            detail,
            unsent,
            one_attempt: false,
        }
    }
}

/// The HTTP status of a raw response, for the mapping.
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The `Display` of an error and of each of its sources, joined with `: ` — the cause in
/// words, without the `Debug` dump `DisplayErrorContext` appends. A source whose text the
/// previous one already contains is left out (hyper repeats itself).
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut last = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        last = text;
        next = e.source();
    }
    out
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
        // A disabled KMS key, one pending deletion or import, or (Secrets Manager's words for
        // the same) a secret's KMS key it cannot use: only an operator can fix it.
        "DisabledException"
        | "KMSInvalidStateException"
        | "DecryptionFailure"
        | "EncryptionFailure" => ErrorKind::Unavailable,
        "InvalidParameterException"
        | "InvalidRequestException"
        | "InvalidKeyUsageException"
        | "InvalidGrantTokenException"
        | "ValidationException"
        | "MalformedPolicyDocumentException" => ErrorKind::InvalidInput,
        _ => return None,
    })
}

/// Codes that retrying cannot fix (a key an operator must enable, restore or grant).
fn needs_an_operator(code: &str) -> bool {
    matches!(
        code,
        "DisabledException"
            | "KMSInvalidStateException"
            | "DecryptionFailure"
            | "EncryptionFailure"
    )
}

/// Maps an SDK failure of `call` to an [`Error`] of `backend`; `what` names the request and
/// the full secret name or KMS key (`"GetSecretValue payments/prod/db"`), never a value.
///
/// | AWS says | Kind |
/// |---|---|
/// | `ResourceNotFoundException` | `NotFound`; on `CreateSecret`: `Configuration` (a dependency, e.g. the store's KMS key) |
/// | KMS `NotFoundException` (key or alias missing) | `Configuration`: the provider's key, never the secret's own `NotFound` |
/// | `AccessDeniedException` | `PermissionDenied` |
/// | `UnrecognizedClientException`, `ExpiredTokenException`, bad signature | `Unauthenticated` |
/// | `ThrottlingException`, `LimitExceededException`, HTTP 429 | `RateLimited` (retryable) |
/// | `InternalServiceError`, `KMSInternalException`, other 5xx | `Unavailable` (retryable) |
/// | KMS `DisabledException`, `KMSInvalidStateException`; `DecryptionFailure`, `EncryptionFailure` (the secret's KMS key is unusable) | `Unavailable`, marked exhausted (retrying cannot help) |
/// | `InvalidRequestException` "scheduled for deletion" (every wording in [`WORDINGS`]) | `NotFound` on reads and deletes, `Conflict` on writes |
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
///
/// **Failures that prove nothing was applied.** The refusal kinds say so on their own
/// (`RateLimited` for throttling, `PermissionDenied`, `Unauthenticated`, `Conflict`,
/// `InvalidInput`, `Configuration` for a request that could not be built). Besides them, a
/// request that never left this process is marked with [`Error::not_applied`]: the SDK's HTTP
/// client failed to connect (connection refused, DNS, TLS handshake, a connect timeout:
/// hyper-util's connect error, which comes before anything is written), or credentials could
/// not be resolved to sign it. The SDK's own classes do not tell this: its
/// `DispatchFailure` "MAY have been sent", and its connector calls both a refused connection
/// and a connection lost after the request went out an I/O error (`is_io`), both a connect
/// timeout and a read timeout a timeout (`is_timeout`). The mark is given only when the
/// client makes one attempt per call ([`Failure::one_attempt`]): with the SDK's retries on,
/// an earlier attempt may have been sent. Everything else leaves the outcome unknown: an SDK
/// timeout, an I/O failure or read timeout after connecting, an unparseable answer, and a 5xx
/// (`InternalServiceError`, `ServiceUnavailable`: AWS does not document them as "not
/// applied").
///
/// Messages are one line: no control character of an AWS message or an SDK description
/// reaches them.
pub(crate) fn to_error(
    failure: impl Into<Failure>,
    call: Call,
    backend: &'static str,
    what: &str,
) -> Error {
    to_error_and_condition(failure, call, backend, what).error
}

/// [`to_error`], keeping the [`Condition`] the store acts on (restore a secret scheduled for
/// deletion, recognise a token already used by an earlier attempt).
pub(crate) fn to_error_and_condition(
    failure: impl Into<Failure>,
    call: Call,
    backend: &'static str,
    what: &str,
) -> Mapped {
    let Failure {
        class,
        code,
        message,
        status,
        detail,
        unsent,
        one_attempt,
    } = failure.into();
    let (message, detail) = (
        message.map(|m| cap(&one_line(&redact_echoed_values(&m)))),
        cap(&one_line(&redact_echoed_values(&detail))),
    );
    let mut condition = None;
    let (kind, text) = match class {
        _ if class != Class::Service
            && condition_of(None, &detail) == Some(Condition::MissingRegion) =>
        {
            condition = Some(Condition::MissingRegion);
            (
                ErrorKind::Configuration,
                format!(
                    "{what}: no AWS region configured (set AWS_REGION, a profile's region, or \
                     AwsConnection::region)"
                ),
            )
        }
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
            condition = code.as_deref().and_then(|c| condition_of(Some(c), msg));
            if call == Call::Write && code_str == "ResourceExistsException" {
                condition = Some(Condition::TokenInUse);
            }
            let not_found = kind_of(code_str) == Some(ErrorKind::NotFound);
            let kind = if condition == Some(Condition::ScheduledForDeletion) {
                match call {
                    Call::Read | Call::Delete => ErrorKind::NotFound,
                    Call::Write | Call::Create | Call::Kms | Call::Other => ErrorKind::Conflict,
                }
            } else if not_found && matches!(call, Call::Kms | Call::Create) {
                ErrorKind::Configuration
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
            if condition == Some(Condition::ScheduledForDeletion) {
                text.push_str(": the secret is scheduled for deletion");
                if matches!(call, Call::Write | Call::Create) {
                    text.push_str(
                        " (restore it with RestoreSecret, or build the store with \
                         `restore_deleted(true)`, or wait until the recovery window ends)",
                    );
                }
            } else if not_found && call == Call::Kms {
                text.push_str(
                    ": the KMS key does not exist in this account and region (check the \
                     provider's key id or alias)",
                );
            } else if not_found && call == Call::Create {
                text.push_str(
                    ": a resource the store's settings name (its KMS key) does not exist",
                );
            } else if matches!(code_str, "DecryptionFailure" | "EncryptionFailure") {
                text.push_str(
                    ": Secrets Manager cannot use the secret's KMS key (disabled, pending \
                     deletion, deleted, or not usable by these credentials)",
                );
            } else if matches!(
                code_str,
                "InvalidCiphertextException" | "IncorrectKeyException"
            ) {
                text.push_str(
                    ": the ciphertext does not decrypt under this key and encryption context \
                     (altered, from another key, or another context)",
                );
            }
            if !msg.is_empty() {
                text.push_str(": ");
                text.push_str(msg);
            } else if let Some(status) = status {
                text.push_str(&format!(": HTTP {status}"));
            }
            (kind, text)
        }
    };
    let mut error = Error::new(kind, one_line(&text)).with_backend(backend);
    if let Some(code) = code
        .map(|c| one_line(&c))
        .or_else(|| status.map(|s| format!("HTTP {s}")))
    {
        error = error.with_code(code);
    }
    if error.code().is_some_and(needs_an_operator) {
        error = error.exhausted();
    }
    if unsent && one_attempt {
        error = error.not_applied();
    }
    Mapped { error, condition }
}

/// AWS's validation messages quote the offending input: `1 validation error detected: Value
/// '<input>' at 'secretString' failed to satisfy constraint: …` (several joined by `; `).
/// The input may be a secret or a plaintext, so every quoted value becomes `'…'`; the field
/// name and the constraint stay. A quote that never closes hides the rest of the message.
fn redact_echoed_values(message: &str) -> String {
    const OPEN: &str = "Value '";
    const CLOSE: &str = "' failed to satisfy constraint";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start + OPEN.len()]);
        out.push('…');
        let after = &rest[start + OPEN.len()..];
        // The value ends at the last "' at '<field>" before the next constraint text, so a
        // value that itself contains "' at '" is still hidden whole.
        let Some(end) = after.find(CLOSE) else {
            out.push('\'');
            return out;
        };
        let field_start = after[..end].rfind("' at '").unwrap_or(end);
        rest = &after[field_start..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BACKEND, KMS_PROVIDER};

    fn service(code: Option<&str>, message: &str, status: u16) -> Failure {
        Failure {
            class: Class::Service,
            code: code.map(str::to_owned),
            message: Some(message.to_owned()),
            status: Some(status),
            detail: String::new(),
            unsent: false,
            one_attempt: true,
        }
    }

    fn kind(code: &str, status: u16) -> ErrorKind {
        to_error(
            service(Some(code), "m", status),
            Call::Other,
            KMS_PROVIDER,
            "x",
        )
        .kind()
    }

    #[test]
    fn echoed_values_are_redacted() {
        for (message, shown) in [
            (
                "1 validation error detected: Value 'hunter2' at 'secretString' failed to \
                 satisfy constraint: Member must have length less than or equal to 65536",
                "1 validation error detected: Value '…' at 'secretString' failed to satisfy \
                 constraint: Member must have length less than or equal to 65536",
            ),
            (
                "2 validation errors detected: Value 'a' at 'x' failed to satisfy constraint: \
                 c1; Value 'b' at 'y' failed to satisfy constraint: c2",
                "2 validation errors detected: Value '…' at 'x' failed to satisfy constraint: \
                 c1; Value '…' at 'y' failed to satisfy constraint: c2",
            ),
            (
                "Value 'p' at 'q' at 'plaintext' failed to satisfy constraint",
                "Value '…' at 'plaintext' failed to satisfy constraint",
            ),
            ("Value 'never closed hunter2", "Value '…'"),
            ("no value quoted", "no value quoted"),
        ] {
            assert_eq!(redact_echoed_values(message), shown);
            let err = to_error(
                service(Some("ValidationException"), message, 400),
                Call::Write,
                BACKEND,
                "PutSecretValue app/db",
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
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
            KMS_PROVIDER,
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
            to_error(f(), Call::Read, BACKEND, "get").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            to_error(f(), Call::Delete, BACKEND, "delete").kind(),
            ErrorKind::NotFound
        );
        let write = to_error(f(), Call::Write, BACKEND, "PutSecretValue app/db");
        assert_eq!(write.kind(), ErrorKind::Conflict);
        assert!(
            write.message().contains("scheduled for deletion"),
            "{write}"
        );
        assert!(write.message().contains("restore_deleted"), "{write}");
        // Any other invalid request stays invalid input.
        let other = service(Some("InvalidRequestException"), "bad", 400);
        assert_eq!(
            to_error(other, Call::Write, BACKEND, "x").kind(),
            ErrorKind::InvalidInput
        );
    }

    /// Every wording AWS (and moto) sends for a secret scheduled for deletion, as sent.
    const SCHEDULED_FOR_DELETION: &[&str] = &[
        "You can't perform this operation on the secret because it was marked for deletion.",
        "You can\u{2019}t perform this operation on the secret because it was marked for deletion.",
        "You can't perform this operation on the secret because it was deleted.",
        "You can\u{2019}t perform this operation on the secret because it was deleted.",
        "You tried to perform the operation on a secret that's currently marked deleted.",
        "An error occurred (InvalidRequestException) when calling the GetSecretValue operation: \
         You tried to                 perform the operation on a secret that's currently marked \
         deleted.",
        "The secret is scheduled for deletion.",
    ];

    #[test]
    fn every_wording_of_scheduled_deletion_is_recognised_on_every_call() {
        for msg in SCHEDULED_FOR_DELETION {
            assert_eq!(
                condition_of(Some("InvalidRequestException"), msg),
                Some(Condition::ScheduledForDeletion),
                "{msg}"
            );
            for (call, kind) in [
                (Call::Read, ErrorKind::NotFound),
                (Call::Delete, ErrorKind::NotFound),
                (Call::Write, ErrorKind::Conflict),
                (Call::Create, ErrorKind::Conflict),
                (Call::Other, ErrorKind::Conflict),
            ] {
                let m = to_error_and_condition(
                    service(Some("InvalidRequestException"), msg, 400),
                    call,
                    BACKEND,
                    "x",
                );
                assert_eq!(m.error.kind(), kind, "{call:?} {msg}");
                assert_eq!(m.condition, Some(Condition::ScheduledForDeletion));
                assert!(
                    m.error.message().contains("scheduled for deletion"),
                    "{}",
                    m.error
                );
            }
        }
    }

    #[test]
    fn no_secret_name_can_pass_for_a_wording() {
        for row in WORDINGS {
            assert!(
                row.phrase.contains(' '),
                "{row:?}: a name could hold this phrase"
            );
        }
        let exists =
            "The operation failed because the secret app/ClientRequestToken already exists.";
        assert_eq!(condition_of(Some("ResourceExistsException"), exists), None);
    }

    #[test]
    fn every_row_of_the_table_is_tested() {
        for row in WORDINGS {
            let covered = match row.condition {
                Condition::ScheduledForDeletion => SCHEDULED_FOR_DELETION.iter().any(|m| {
                    condition_of(row.code, m).is_some()
                        && m.to_lowercase()
                            .replace('\u{2019}', "'")
                            .contains(row.phrase)
                }),
                Condition::TokenInUse => TOKEN_IN_USE
                    .iter()
                    .any(|m| m.to_lowercase().contains(row.phrase)),
                Condition::MissingRegion => {
                    condition_of(None, "dispatch failure: other: missing signing region")
                        == Some(Condition::MissingRegion)
                }
            };
            assert!(covered, "no test message for {row:?}");
            assert!(!row.source.is_empty(), "{row:?} names no source");
        }
    }

    /// Every wording of "this token is already a version, with another value".
    const TOKEN_IN_USE: &[&str] = &[
        "You can't use ClientRequestToken 0123456789abcdef0123456789abcdef because that value is \
         already in use for a version of secret arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf.",
        "You can't modify an existing version, you can only create a new version.",
    ];

    #[test]
    fn a_token_in_use_is_recognised_by_wording_and_on_a_put_by_code() {
        for msg in TOKEN_IN_USE {
            for call in [Call::Write, Call::Create] {
                let m = to_error_and_condition(
                    service(Some("ResourceExistsException"), msg, 400),
                    call,
                    BACKEND,
                    "x",
                );
                assert_eq!(m.condition, Some(Condition::TokenInUse), "{call:?} {msg}");
                assert_eq!(m.error.kind(), ErrorKind::Conflict);
            }
        }
        // A put creates no secret: any ResourceExistsException is about the version.
        let m = to_error_and_condition(
            service(Some("ResourceExistsException"), "exists", 400),
            Call::Write,
            BACKEND,
            "x",
        );
        assert_eq!(m.condition, Some(Condition::TokenInUse));
        // A create race (the secret exists, made by another writer) is not.
        let m = to_error_and_condition(
            service(
                Some("ResourceExistsException"),
                "The operation failed because the secret a already exists.",
                400,
            ),
            Call::Create,
            BACKEND,
            "x",
        );
        assert_eq!(m.condition, None);
    }

    #[test]
    fn wordings_count_only_with_their_code() {
        // The wording under another code, and other InvalidRequestException wordings.
        let msg = SCHEDULED_FOR_DELETION[0];
        assert_eq!(condition_of(Some("ResourceNotFoundException"), msg), None);
        assert_eq!(condition_of(None, msg), None);
        let rotation = "You tried to enable rotation on a secret that doesn't already have a \
                        Lambda function ARN configured and you didn't include such an ARN.";
        let m = to_error_and_condition(
            service(Some("InvalidRequestException"), rotation, 400),
            Call::Write,
            BACKEND,
            "x",
        );
        assert_eq!(m.condition, None);
        assert_eq!(m.error.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn a_missing_kms_key_is_configuration_never_not_found() {
        for msg in [
            "Alias arn:aws:kms:us-east-1:123456789012:alias/payments is not found.",
            "Key 'arn:aws:kms:us-east-1:123456789012:key/1111' does not exist",
            "Invalid keyId alias/payments",
        ] {
            let err = to_error(
                service(Some("NotFoundException"), msg, 400),
                Call::Kms,
                KMS_PROVIDER,
                "KMS Decrypt under alias/payments",
            );
            assert_eq!(err.kind(), ErrorKind::Configuration, "{msg}: {err}");
            assert!(!err.is_not_found());
            assert!(err.message().contains("KMS key does not exist"), "{err}");
            assert!(err.message().contains(msg), "keeps AWS's words: {err}");
        }
        // Secrets Manager's CreateSecret: the secret is what is being created, so a missing
        // resource is one the store's settings name.
        let err = to_error(
            service(Some("ResourceNotFoundException"), "not found", 400),
            Call::Create,
            BACKEND,
            "CreateSecret a/b",
        );
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        // Secrets Manager cannot use the secret's KMS key: the operator's to fix.
        for code in ["DecryptionFailure", "EncryptionFailure"] {
            let err = to_error(
                service(Some(code), "can't decrypt", 400),
                Call::Read,
                BACKEND,
                "GetSecretValue a/b",
            );
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{code}");
            assert!(!err.is_retryable(), "{code}: marked exhausted");
            assert!(err.message().contains("KMS key"), "{err}");
        }
    }

    #[test]
    fn a_missing_region_is_configuration() {
        let failure = Failure {
            class: Class::Dispatch { timeout: false },
            code: None,
            message: None,
            status: None,
            detail: "dispatch failure: other: missing signing region".into(),
            unsent: false,
            one_attempt: true,
        };
        let err = to_error(failure, Call::Read, BACKEND, "GetSecretValue a");
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.message().contains("AWS_REGION"), "{err}");
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_words_without_a_debug_dump() {
        let err = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer(
                    "tcp connect error: Connection refused (os error 111)",
                    Some(Box::new(Layer("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            causes(&err),
            "dispatch failure: io error: tcp connect error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn long_messages_are_capped() {
        let long = "é".repeat(1000);
        let err = to_error(
            service(Some("SomethingNew"), &long, 400),
            Call::Other,
            BACKEND,
            "x",
        );
        assert!(err.message().len() < 400, "{}", err.message().len());
        assert_eq!(err.backend(), Some("aws"));
    }

    fn unanswered(class: Class, detail: &str, unsent: bool, one_attempt: bool) -> Error {
        to_error(
            Failure {
                class,
                code: None,
                message: None,
                status: None,
                detail: detail.into(),
                unsent,
                one_attempt,
            },
            Call::Write,
            BACKEND,
            "PutSecretValue app/db",
        )
    }

    #[test]
    fn a_request_never_sent_proves_nothing_was_applied_only_after_one_attempt() {
        let refused = "dispatch failure: io error: client error (Connect): tcp connect error";
        let err = unanswered(Class::Dispatch { timeout: false }, refused, true, true);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.proves_not_applied(), "{err:?}");
        assert!(!err.never_reached_backend(), "{err:?}");
        // A connect timeout: still never sent.
        let err = unanswered(
            Class::Dispatch { timeout: true },
            "connect timeout",
            true,
            true,
        );
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.proves_not_applied(), "{err:?}");
        // With SDK retries an earlier attempt may have gone out.
        let err = unanswered(Class::Dispatch { timeout: false }, refused, true, false);
        assert!(!err.proves_not_applied(), "{err:?}");
        // Sent, then lost: unknown.
        for class in [
            Class::Dispatch { timeout: false },
            Class::Dispatch { timeout: true },
            Class::Timeout,
            Class::Response,
        ] {
            let err = unanswered(
                class,
                "connection closed before message completed",
                false,
                true,
            );
            assert!(!err.proves_not_applied(), "{class:?}: {err:?}");
        }
        // Could not be built: a refusal kind on its own.
        let err = unanswered(Class::Construction, "bad input", true, false);
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert!(err.proves_not_applied());
        // No credentials to sign with: never sent.
        let err = unanswered(
            Class::Credentials(CredentialsFailure::TimedOut),
            "the credential provider timed out",
            true,
            true,
        );
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.proves_not_applied(), "{err:?}");
    }

    #[test]
    fn service_answers_prove_what_their_kind_proves() {
        for (code, status, proves) in [
            ("ThrottlingException", 400, true),
            ("AccessDeniedException", 400, true),
            ("ResourceExistsException", 400, true),
            ("InvalidParameterException", 400, true),
            ("InternalServiceError", 500, false),
            ("ServiceUnavailable", 503, false),
            ("SomethingNew", 503, false),
        ] {
            let err = to_error(
                service(Some(code), "m", status),
                Call::Write,
                BACKEND,
                "PutSecretValue a",
            );
            assert_eq!(err.proves_not_applied(), proves, "{code}: {err:?}");
        }
    }

    #[test]
    fn control_characters_from_aws_or_the_sdk_never_reach_a_message() {
        let hostile = "bad\r\ninput\t\u{1b}[31m\u{0}\u{7f}\u{85}\u{2028}\u{202E}end";
        let service_err = to_error(
            Failure {
                code: Some("Weird\nCode".into()),
                ..service(Some("x"), hostile, 400)
            },
            Call::Read,
            BACKEND,
            "GetSecretValue a",
        );
        let sdk_err = unanswered(Class::Response, hostile, false, true);
        for err in [&service_err, &sdk_err] {
            let text = err.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(
                !text.contains('\u{2028}') && !text.contains('\u{202E}'),
                "{text:?}"
            );
            assert!(text.contains("bad input [31m end"), "{text:?}");
        }
        assert_eq!(service_err.code(), Some("Weird Code"));
    }
}
