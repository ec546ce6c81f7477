//! [`AwsConnection`]: where and as whom to reach AWS, resolved into the SDK's `SdkConfig`.

use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use kms_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};

/// How to reach AWS: region, credentials and endpoint, from `aws-config`'s default chain with
/// overrides.
///
/// With no overrides, [`load`](Self::load) resolves everything the way every AWS SDK does:
/// region from `AWS_REGION` / the profile / IMDS, credentials from the environment, the
/// shared profile (including SSO and `credential_process`), web identity (EKS IRSA), ECS and
/// EC2 instance metadata.
///
/// Two defaults differ from a bare `aws_config::load_defaults`:
///
/// - **The SDK's own retries are off.** Retries belong in one place, kms-core's
///   [`RetryLayer`](kms_core::RetryLayer), which has a budget, jitter, marks errors as
///   exhausted so decorators never retry twice, and is what the circuit breaker and metrics
///   see. Turn them back on with [`sdk_retries(true)`](Self::sdk_retries) if you do not use
///   the layer.
/// - Nothing else: timeouts stay the SDK's unless set here (connect 3.1 s; no operation
///   timeout, which kms-core's [`TimeoutLayer`](kms_core::TimeoutLayer) provides).
///
/// Bring your own `SdkConfig` instead when the service already has one: the store and
/// provider builders take any `&SdkConfig`.
#[derive(Clone, Default)]
pub struct AwsConnection {
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    credentials: Option<StaticCredentials>,
    sdk_retries: bool,
    connect_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
}

#[derive(Clone)]
struct StaticCredentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

impl AwsConnection {
    /// The default chain, no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this region (e.g. `"eu-west-1"`) instead of the chain's.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sends every request to `url` instead of the public endpoint: an emulator
    /// (`http://127.0.0.1:5000`) or a VPC interface endpoint.
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Reads region and credentials from this shared-config profile.
    #[must_use]
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// Uses these static credentials instead of the chain (tests, emulators, short scripts;
    /// prefer the chain in production). The secret key and token are held as
    /// [`SecretString`]s and never printed.
    #[must_use]
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<SecretString>,
        session_token: Option<SecretString>,
    ) -> Self {
        self.credentials = Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        });
        self
    }

    /// Keeps the SDK's own retries (standard mode, 3 attempts). Off by default: see the type
    /// docs.
    #[must_use]
    pub fn sdk_retries(mut self, on: bool) -> Self {
        self.sdk_retries = on;
        self
    }

    /// The TCP/TLS connect timeout (SDK default 3.1 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// A deadline for each whole operation, enforced by the SDK (a timed-out call is
    /// [`ErrorKind::Timeout`](kms_core::ErrorKind::Timeout)).
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Resolves the chain with the overrides into an `SdkConfig`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Configuration`](kms_core::ErrorKind::Configuration) when no region is
    /// configured anywhere in the chain (no `.region()`, no `AWS_REGION`, no profile region,
    /// no instance metadata), instead of a store whose every call fails later; and when
    /// called outside a Tokio runtime (the SDK's HTTP client and timers need one).
    /// Credentials are resolved lazily, on the first request: missing credentials are an
    /// [`Unauthenticated`](kms_core::ErrorKind::Unauthenticated) error of that request.
    pub async fn load(self) -> Result<SdkConfig> {
        crate::runtime::require(crate::BACKEND, "AwsConnection::load")?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = self.region {
            loader = loader.region(Region::new(region));
        }
        if let Some(url) = self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(c) = self.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id,
                c.secret_access_key.expose_secret(),
                c.session_token.map(|t| t.expose_secret().to_owned()),
                None,
                "kms-backend-aws-static",
            ));
        }
        if !self.sdk_retries {
            loader = loader.retry_config(RetryConfig::disabled());
        }
        if self.connect_timeout.is_some() || self.operation_timeout.is_some() {
            let mut timeouts = TimeoutConfig::builder();
            if let Some(t) = self.connect_timeout {
                timeouts = timeouts.connect_timeout(t);
            }
            if let Some(t) = self.operation_timeout {
                timeouts = timeouts.operation_timeout(t);
            }
            loader = loader.timeout_config(timeouts.build());
        }
        let config = loader.load().await;
        require_region(config.region(), "AwsConnection::load")?;
        Ok(config)
    }
}

/// [`ErrorKind::Configuration`] unless a region is set: without one the SDK cannot sign any
/// request (it would fail each call with "missing signing region").
pub(crate) fn require_region(region: Option<&Region>, what: &str) -> Result<()> {
    if region.is_some_and(|r| !r.as_ref().is_empty()) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Configuration,
        format!(
            "{what}: no AWS region configured: set AWS_REGION, a profile's `region`, or \
             AwsConnection::region(\"eu-west-1\")"
        ),
    )
    .with_backend(crate::BACKEND))
}

impl fmt::Debug for AwsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConnection")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|c| format!("static {} [REDACTED]", c.access_key_id)),
            )
            .field("sdk_retries", &self.sdk_retries)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_key() {
        let conn = AwsConnection::new().static_credentials(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            Some("session-token-value".to_owned().into()),
        );
        let shown = format!("{conn:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("session-token-value"), "{shown}");
    }

    #[tokio::test]
    async fn sdk_retries_are_off_unless_asked_for() {
        let off = AwsConnection::new()
            .region("us-east-1")
            .load()
            .await
            .unwrap();
        assert_eq!(off.retry_config().unwrap().max_attempts(), 1);
        let on = AwsConnection::new()
            .region("us-east-1")
            .sdk_retries(true)
            .load()
            .await
            .unwrap();
        assert!(on.retry_config().unwrap().max_attempts() > 1);
        assert_eq!(on.region().unwrap().as_ref(), "us-east-1");
    }
}
