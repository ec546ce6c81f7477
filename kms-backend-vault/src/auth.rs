//! How the client authenticates: a token, AppRole or Kubernetes.

use std::fmt;
use std::path::PathBuf;

use kms_core::{Error, ErrorKind, Result};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::BACKEND;

/// How a [`VaultClient`](crate::VaultClient) gets its token.
///
/// Secrets (tokens, secret ids) are [`SecretString`]s, zeroized on drop and never printed:
/// `Debug` shows the method and its non-secret parameters only.
#[derive(Clone)]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token obtained elsewhere (`VAULT_TOKEN`). Renewed in the background if renewable;
    /// it cannot be re-obtained, so a 403 is final.
    Token(SecretString),
    /// AppRole: `POST auth/<mount>/login` with a role id and a secret id.
    AppRole {
        /// The auth mount (usually `"approle"`).
        mount: String,
        /// The role id (an identifier, not a secret, but not printed either).
        role_id: String,
        /// The secret id.
        secret_id: SecretString,
    },
    /// Kubernetes: `POST auth/<mount>/login` with a role and the service-account JWT, read
    /// from `jwt_path` at every login (projected tokens rotate).
    Kubernetes {
        /// The auth mount (usually `"kubernetes"`).
        mount: String,
        /// The Vault role to log in as.
        role: String,
        /// The service-account token file
        /// (`/var/run/secrets/kubernetes.io/serviceaccount/token`).
        jwt_path: PathBuf,
    },
}

impl VaultAuth {
    /// A fixed token.
    pub fn token(token: impl Into<String>) -> Self {
        Self::Token(SecretString::from(token.into()))
    }

    /// AppRole on the `approle` mount.
    pub fn app_role(role_id: impl Into<String>, secret_id: impl Into<String>) -> Self {
        Self::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id: SecretString::from(secret_id.into()),
        }
    }

    /// Kubernetes on the `kubernetes` mount with the in-cluster service-account token.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_path: PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        }
    }

    /// Sets the auth mount (AppRole, Kubernetes); no effect on a token.
    #[must_use]
    pub fn with_mount(mut self, new_mount: impl Into<String>) -> Self {
        match &mut self {
            Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } => {
                *mount = new_mount.into()
            }
            Self::Token(_) => {}
        }
        self
    }

    /// Sets the JWT file (Kubernetes); no effect otherwise.
    #[must_use]
    pub fn with_jwt_path(mut self, path: impl Into<PathBuf>) -> Self {
        if let Self::Kubernetes { jwt_path, .. } = &mut self {
            *jwt_path = path.into();
        }
        self
    }

    /// The auth mount (AppRole, Kubernetes), checked when the client is built.
    pub(crate) fn mount(&self) -> Option<&str> {
        match self {
            Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } => Some(mount),
            Self::Token(_) => None,
        }
    }

    /// Whether a new token can be obtained (everything but a fixed token).
    pub fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }

    /// The method label: `"token"`, `"approle"`, `"kubernetes"`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
        }
    }

    /// The login path and body, or `None` for a fixed token. The body holds secrets: it is
    /// sent and dropped, never logged.
    pub(crate) async fn login_request(&self) -> Result<Option<(String, Value)>> {
        Ok(match self {
            Self::Token(_) => None,
            Self::AppRole {
                mount,
                role_id,
                secret_id,
            } => Some((
                format!("auth/{mount}/login"),
                json!({ "role_id": role_id, "secret_id": secret_id.expose_secret() }),
            )),
            Self::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt = tokio::fs::read_to_string(jwt_path).await.map_err(|e| {
                    Error::new(
                        ErrorKind::Configuration,
                        format!(
                            "cannot read the Kubernetes service-account token {}: {}",
                            jwt_path.display(),
                            e.kind()
                        ),
                    )
                    .with_backend(BACKEND)
                })?;
                let jwt = SecretString::from(jwt.trim().to_owned());
                Some((
                    format!("auth/{mount}/login"),
                    json!({ "role": role, "jwt": jwt.expose_secret() }),
                ))
            }
        })
    }
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.debug_tuple("Token").field(&"[REDACTED]").finish(),
            Self::AppRole { mount, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", &"[REDACTED]")
                .field("secret_id", &"[REDACTED]")
                .finish(),
            Self::Kubernetes {
                mount,
                role,
                jwt_path,
            } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .field("jwt_path", jwt_path)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let token = format!("{:?}", VaultAuth::token("hvs.SUPERSECRETTOKEN"));
        assert!(!token.contains("SUPERSECRET"), "{token}");
        assert!(token.contains("REDACTED"), "{token}");
        let approle = format!("{:?}", VaultAuth::app_role("role-1234", "secret-id-5678"));
        assert!(!approle.contains("secret-id-5678"), "{approle}");
        assert!(!approle.contains("role-1234"), "{approle}");
        assert!(approle.contains("approle"), "{approle}");
    }

    #[tokio::test]
    async fn kubernetes_reads_the_jwt_file_at_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "eyJ.jwt.sig\n").unwrap();
        let auth = VaultAuth::kubernetes("app")
            .with_mount("k8s")
            .with_jwt_path(&path);
        let (login_path, body) = auth.login_request().await.unwrap().unwrap();
        assert_eq!(login_path, "auth/k8s/login");
        assert_eq!(body["jwt"], "eyJ.jwt.sig");
        assert_eq!(body["role"], "app");
        assert!(!format!("{auth:?}").contains("eyJ"));

        let missing = VaultAuth::kubernetes("app").with_jwt_path(dir.path().join("nope"));
        let err = missing.login_request().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
    }
}
