//! Which route a request path names: one classification, used for dispatch and as the
//! bounded `route` label of the request counter.
//!
//! The order is the AWS agent's (`/ping`, `/secretsmanager/get`, then the path prefix), with
//! the agent's own routes (`/healthz`, `/readyz`, `/kms/v1/…`) checked before the prefix, so a
//! prefix of `/` cannot shadow them.

/// A route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /ping`: the AWS agent's health check.
    Ping,
    /// `GET /healthz`: liveness.
    Healthz,
    /// `GET /readyz`: readiness.
    Readyz,
    /// `GET /secretsmanager/get?secretId=…`.
    SecretsManagerQuery,
    /// `GET <path_prefix><secretId>`.
    SecretsManagerPath,
    /// `GET /kms/v1/stores`.
    KmsStores,
    /// `GET /kms/v1/secrets/<key>` and `GET /kms/v1/stores/<store>/secrets/<key>`.
    KmsSecret,
    /// `GET /kms/v1/health` and `GET /kms/v1/stores/<store>/health`.
    KmsHealth,
    /// `POST /kms/v1/cache/clear` and `POST /kms/v1/stores/<store>/cache/clear`.
    KmsCacheClear,
    /// `POST /kms/v1/reload`: re-read the configuration, as SIGHUP does.
    KmsReload,
    /// `GET /metrics` on the metrics listener.
    Metrics,
    /// Anything else.
    NotFound,
}

impl Route {
    /// The route of `path` on the API listeners.
    pub fn of(path: &str, path_prefix: &str, secrets_manager: bool) -> Self {
        match path {
            "/ping" => return Self::Ping,
            "/healthz" => return Self::Healthz,
            "/readyz" => return Self::Readyz,
            "/secretsmanager/get" if secrets_manager => return Self::SecretsManagerQuery,
            "/kms/v1/stores" => return Self::KmsStores,
            "/kms/v1/health" => return Self::KmsHealth,
            "/kms/v1/cache/clear" => return Self::KmsCacheClear,
            "/kms/v1/reload" => return Self::KmsReload,
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/kms/v1/") {
            if rest.starts_with("secrets/") {
                return Self::KmsSecret;
            }
            if let Some(rest) = rest.strip_prefix("stores/")
                && let Some((_store, tail)) = rest.split_once('/')
            {
                if tail == "health" {
                    return Self::KmsHealth;
                }
                if tail == "cache/clear" {
                    return Self::KmsCacheClear;
                }
                if tail.starts_with("secrets/") {
                    return Self::KmsSecret;
                }
            }
            return Self::NotFound;
        }
        if secrets_manager && path.starts_with(path_prefix) {
            return Self::SecretsManagerPath;
        }
        Self::NotFound
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Healthz => "healthz",
            Self::Readyz => "readyz",
            Self::SecretsManagerQuery => "secretsmanager_get",
            Self::SecretsManagerPath => "secretsmanager_path",
            Self::KmsStores => "kms_stores",
            Self::KmsSecret => "kms_secret",
            Self::KmsHealth => "kms_health",
            Self::KmsCacheClear => "kms_cache_clear",
            Self::KmsReload => "kms_reload",
            Self::Metrics => "metrics",
            Self::NotFound => "not_found",
        }
    }

    /// The one method the route answers (others: 405): `POST` for what changes the agent's
    /// state (clearing a cache, a reload), `GET` for every read, as in the AWS agent.
    pub fn method(self) -> http::Method {
        match self {
            Self::KmsCacheClear | Self::KmsReload => http::Method::POST,
            _ => http::Method::GET,
        }
    }

    /// Health checks: answered without a token, with the AWS agent's extra connection
    /// allowance for `/ping`.
    pub const fn is_health_check(self) -> bool {
        matches!(self, Self::Ping | Self::Healthz | Self::Readyz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        let r = |p| Route::of(p, "/v1/", true);
        assert_eq!(r("/ping"), Route::Ping);
        assert_eq!(r("/healthz"), Route::Healthz);
        assert_eq!(r("/readyz"), Route::Readyz);
        assert_eq!(r("/secretsmanager/get"), Route::SecretsManagerQuery);
        assert_eq!(r("/v1/MyTest"), Route::SecretsManagerPath);
        assert_eq!(r("/v1/"), Route::SecretsManagerPath);
        assert_eq!(r("/kms/v1/stores"), Route::KmsStores);
        assert_eq!(r("/kms/v1/health"), Route::KmsHealth);
        assert_eq!(r("/kms/v1/stores/vault/health"), Route::KmsHealth);
        assert_eq!(r("/kms/v1/stores/vault/secrets/app/db"), Route::KmsSecret);
        assert_eq!(r("/kms/v1/secrets/app/db"), Route::KmsSecret);
        assert_eq!(r("/kms/v1/cache/clear"), Route::KmsCacheClear);
        assert_eq!(r("/kms/v1/stores/vault/cache/clear"), Route::KmsCacheClear);
        assert_eq!(r("/kms/v1/stores/vault/cache"), Route::NotFound);
        assert_eq!(r("/kms/v1/reload"), Route::KmsReload);
        assert_eq!(r("/kms/v1/other"), Route::NotFound);
        assert_eq!(r("/pong"), Route::NotFound);
        assert_eq!(r("/"), Route::NotFound);
    }

    #[test]
    fn a_root_prefix_does_not_shadow_the_agents_routes() {
        let r = |p| Route::of(p, "/", true);
        assert_eq!(r("/kms/v1/stores"), Route::KmsStores);
        assert_eq!(r("/readyz"), Route::Readyz);
        assert_eq!(r("/MyTest"), Route::SecretsManagerPath);
    }

    #[test]
    fn disabled_secrets_manager_routes_are_not_found() {
        assert_eq!(
            Route::of("/secretsmanager/get", "/v1/", false),
            Route::NotFound
        );
        assert_eq!(Route::of("/v1/x", "/v1/", false), Route::NotFound);
        assert_eq!(Route::of("/ping", "/v1/", false), Route::Ping);
    }
}
