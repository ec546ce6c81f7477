//! How the client gets its token: connecting (a login, or a lookup of a fixed token), and
//! logging in again when Vault rejects the token (classified by [`classify_403`], shared by
//! concurrent callers, at most one per token and per `min_relogin_interval`) or when renewal
//! cannot extend the lease.

use std::time::{Duration, Instant};

use kms_core::{Error, ErrorKind, Result};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;

use super::denial::{Denial, classify_403};
use super::{Inner, LoginState, VaultClient, Verdict, require_runtime};
use crate::BACKEND;
use crate::auth::VaultAuth;
use crate::error_map::{Failure, summarize, to_error};

/// Restores the rate-limit timestamp if a forced login is cancelled before it finishes.
struct ForcedLogin<'a> {
    state: &'a mut LoginState,
    previous: Option<Instant>,
    finished: bool,
}

impl Drop for ForcedLogin<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.state.last_forced = self.previous;
        }
    }
}

impl VaultClient {
    /// Connects now if not connected yet: logs in (AppRole, Kubernetes) or looks the token up
    /// (a fixed token), and starts background renewal. Concurrent callers share one attempt;
    /// a failed attempt is tried again by the next call.
    /// [`build`](crate::VaultClientBuilder::build) calls it; a
    /// [lazy](crate::VaultClientBuilder::build_lazy) client calls it on first use.
    ///
    /// # Errors
    ///
    /// As [`VaultClientBuilder::build`](crate::VaultClientBuilder::build).
    pub async fn connect(&self) -> Result<()> {
        require_runtime("VaultClient")?;
        self.inner
            .connected
            .get_or_try_init(|| async {
                if self.inner.auth.can_login() {
                    self.inner.login().await?;
                } else {
                    self.inner.lookup_self_at_start().await?;
                }
                self.start_renewal();
                self.start_probing();
                Ok::<(), Error>(())
            })
            .await
            .map(drop)
    }
}

impl Inner {
    /// After a 403 with `errors` seen under token generation `seen`: decides between a
    /// policy denial and a rejected token (confirming a bare "permission denied" with
    /// `lookup-self`), and for a rejected token logs in again (once per token, rate-limited;
    /// only if `may_login`). Concurrent callers share one check and one login.
    pub(super) async fn after_403(
        &self,
        seen: u64,
        errors: &[String],
        may_login: bool,
    ) -> Result<Verdict> {
        let denial = classify_403(errors);
        if denial == Denial::Policy {
            return Ok(Verdict::Denied);
        }
        let mut state = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            // Another caller logged in since this request was sent.
            return Ok(if may_login {
                Verdict::Retry
            } else {
                Verdict::Denied
            });
        }
        if denial == Denial::Unclear && self.lookup_verdict().await? == Denial::Policy {
            return Ok(Verdict::Denied);
        }
        let rejected = |why: String| {
            Error::new(
                ErrorKind::Unauthenticated,
                format!("Vault rejected the token (expired, revoked or unknown){why}"),
            )
            .with_backend(BACKEND)
            .with_code("403")
        };
        if !self.auth.can_login() {
            return Err(rejected(
                "; a fixed token cannot be renewed by logging in: supply a new one".into(),
            ));
        }
        if !may_login {
            return Err(rejected(" right after a fresh login".into()));
        }
        if let Some(at) = state.last_forced
            && at.elapsed() < self.min_relogin_interval
        {
            return Err(rejected(format!(
                "; the last login was {:?} ago, not logging in again before {:?} have passed",
                at.elapsed(),
                self.min_relogin_interval
            )));
        }
        tracing::info!(
            backend = BACKEND,
            method = self.auth.method(),
            "token rejected, logging in again"
        );
        // Counted before the login starts; restored if this future is dropped mid-login
        // (cancellation), so a caller's timeout cannot block the next re-login.
        let mut forced = ForcedLogin {
            previous: state.last_forced.replace(Instant::now()),
            state: &mut state,
            finished: false,
        };
        let result = self.login().await;
        forced.finished = true;
        result.map(|()| Verdict::Retry)
    }

    /// Whether the current token is valid (`Policy`: the 403 was a denial) or rejected, by
    /// `lookup-self` (a valid token without the default policy cannot look itself up: Vault
    /// then answers a policy denial, which also proves the token valid).
    async fn lookup_verdict(&self) -> Result<Denial> {
        match self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
        {
            Ok(_) => Ok(Denial::Policy),
            Err(Failure::Status {
                status: 403,
                errors,
            }) => Ok(match classify_403(&errors) {
                Denial::Policy => Denial::Policy,
                Denial::TokenRejected | Denial::Unclear => Denial::TokenRejected,
            }),
            Err(f) => Err(to_error(f, "lookup auth/token/lookup-self")),
        }
    }

    /// Logs in again unless another caller already did since generation `seen` (renewal).
    pub(super) async fn relogin(&self, seen: u64) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        if self.token.read().generation != seen {
            return Ok(());
        }
        tracing::info!(
            backend = BACKEND,
            method = self.auth.method(),
            "token lease ending, logging in again"
        );
        self.login().await
    }

    /// Logs in with the configured method and installs the new token.
    async fn login(&self) -> Result<()> {
        let Some((path, body)) = self.auth.login_request().await? else {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "the fixed token cannot be renewed by logging in",
            )
            .with_backend(BACKEND));
        };
        let what = format!("login {path}");
        let mount = self.auth.mount().unwrap_or_default().to_owned();
        let answer = self
            .send(&Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|f| match f {
                Failure::Status { status: 400, errors } => Error::new(
                    ErrorKind::Unauthenticated,
                    format!("{what}: login rejected: {}", summarize(&errors)),
                )
                .with_backend(BACKEND)
                .with_code("400"),
                // An unauthenticated request to a path with no auth method behind it is a
                // bare 403; Kubernetes also answers 403 for a JWT it does not accept.
                Failure::Status { status: 403, .. } => {
                    let (kind, why) = match &self.auth {
                        VaultAuth::AppRole { .. } => (
                            ErrorKind::Configuration,
                            format!("no AppRole auth method is mounted at auth/{mount} (check the auth mount)"),
                        ),
                        _ => (
                            ErrorKind::Unauthenticated,
                            format!("login rejected: the JWT or role was not accepted, or no auth method is mounted at auth/{mount}"),
                        ),
                    };
                    Error::new(kind, format!("{what}: {why}"))
                        .with_backend(BACKEND)
                        .with_code("403")
                }
                Failure::Status { status: 404, .. } | Failure::Malformed(_) => to_error(
                    Failure::NotVault(format!(
                        "{} did not answer the login like Vault: not a Vault server, or a wrong address",
                        self.address
                    )),
                    &what,
                ),
                f => to_error(f, &what),
            })?;
        drop(body);
        let not_vault = || {
            to_error(
                Failure::NotVault(format!(
                    "{} answered the login without a token: not a Vault server?",
                    self.address
                )),
                &what,
            )
        };
        let auth = answer
            .as_ref()
            .and_then(|a| a.get("auth"))
            .ok_or_else(not_vault)?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .ok_or_else(not_vault)?;
        let mut current = self.token.write();
        current.secret = SecretString::from(token.to_owned());
        current.accessor = auth
            .get("accessor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        current.lease = Duration::from_secs(
            auth.get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
        current.renewable = auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        current.generation += 1;
        Ok(())
    }

    /// Learns a fixed token's accessor, TTL and renewability; a rejected token is
    /// `Unauthenticated`, a server that is not Vault `Configuration`.
    async fn lookup_self_at_start(&self) -> Result<()> {
        let what = "lookup auth/token/lookup-self";
        let answer = match self
            .send(&Method::GET, "auth/token/lookup-self", &[], None)
            .await
        {
            Ok(answer) => answer,
            Err(Failure::Status {
                status: 403,
                errors,
            }) if classify_403(&errors) == Denial::Policy => {
                // A valid token without the default policy: it cannot look itself up, so
                // its TTL is unknown and it is not renewed.
                tracing::debug!(backend = BACKEND, "token cannot look itself up");
                return Ok(());
            }
            Err(Failure::Status { status: 403, .. }) => {
                return Err(Error::new(
                    ErrorKind::Unauthenticated,
                    format!(
                        "{what}: Vault at {} rejected the token (expired, revoked or unknown)",
                        self.address
                    ),
                )
                .with_backend(BACKEND)
                .with_code("403"));
            }
            Err(f @ Failure::NotVault(_)) => return Err(to_error(f, what)),
            Err(Failure::Status { status: 404, .. } | Failure::Malformed(_)) => {
                return Err(to_error(
                    Failure::NotVault(format!(
                        "{} has no auth/token/lookup-self: not a Vault server, or a wrong \
                         address or path",
                        self.address
                    )),
                    what,
                ));
            }
            Err(f) => return Err(to_error(f, what)),
        };
        let data = answer.as_ref().and_then(|a| a.get("data")).ok_or_else(|| {
            to_error(
                Failure::NotVault(format!(
                    "{} answered auth/token/lookup-self without data: not a Vault server?",
                    self.address
                )),
                what,
            )
        })?;
        let mut current = self.token.write();
        current.accessor = data
            .get("accessor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        current.lease = Duration::from_secs(data.get("ttl").and_then(Value::as_u64).unwrap_or(0));
        current.renewable = data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(())
    }
}
