//! The mount check: before a store or Transit provider does anything, it asks Vault what is
//! mounted at its mount path (`GET sys/internal/ui/mounts/<mount>`), so a wrong mount, engine
//! type or KV version is a [`ErrorKind::Configuration`] error naming the setting, never a
//! `NotFound`, an empty list or a stray write.
//!
//! Vault answers that endpoint for any token whose policies grant some capability under the
//! mount (a "preflight capability check"); for a path where nothing is mounted it answers
//! 403 with that message, even to a root token.

use kms_core::{ErrorKind, Result};
use reqwest::Method;
use serde_json::Value;

use crate::client::VaultClient;
use crate::config_path::config_error;
use crate::engine::{Engine, KvVersion};

/// Checks that `mount` is a mount of `want`; the error names the setting to fix.
pub(crate) async fn check_mount(client: &VaultClient, mount: &str, want: Engine) -> Result<()> {
    let path = format!("sys/internal/ui/mounts/{mount}");
    let what = format!("check mount {mount:?}");
    let answer = match client.call(Method::GET, &path, &[], None, &what).await {
        Ok(answer) => answer,
        Err(e)
            if e.kind() == ErrorKind::PermissionDenied
                && e.message().contains("preflight capability check") =>
        {
            return Err(config_error(format!(
                "mount {mount:?}: nothing is mounted at {mount}/ in this namespace, or the \
                 token's policies grant nothing under it (check the mount setting, the \
                 namespace and the policy)"
            )));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(config_error(format!(
                "mount {mount:?}: {} cannot describe its mounts (sys/internal/ui/mounts): \
                 not a Vault server, or too old",
                client.address()
            )));
        }
        Err(e) => return Err(e),
    };
    let data = answer.as_ref().and_then(|a| a.get("data")).ok_or_else(|| {
        config_error(format!(
            "{what}: no data in the answer: not a Vault server?"
        ))
    })?;
    let found_path = data.get("path").and_then(Value::as_str).unwrap_or("");
    if found_path.trim_matches('/') != mount {
        return Err(config_error(format!(
            "mount {mount:?} is not a mount: it is a path inside the mount {:?} (set the \
             mount to {:?} and put the rest in the prefix)",
            found_path.trim_matches('/'),
            found_path.trim_matches('/'),
        )));
    }
    let engine = data.get("type").and_then(Value::as_str).unwrap_or("");
    let version = data
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("1");
    let found = match engine {
        "kv" | "generic" if version == "2" => Engine::Kv(KvVersion::V2),
        "kv" | "generic" => Engine::Kv(KvVersion::V1),
        "transit" => Engine::Transit,
        other => {
            return Err(config_error(format!(
                "mount {mount:?} is a {other:?} secrets engine, not {}",
                describe(want)
            )));
        }
    };
    if found == want {
        return Ok(());
    }
    let hint = match (want, found) {
        (Engine::Kv(_), Engine::Kv(v)) => format!(" (set kv_version(KvVersion::{v:?}))"),
        _ => String::new(),
    };
    Err(config_error(format!(
        "mount {mount:?} is {}, but the store is configured for {}{hint}",
        describe(found),
        describe(want)
    )))
}

fn describe(engine: Engine) -> &'static str {
    match engine {
        Engine::Kv(KvVersion::V1) => "KV v1",
        Engine::Kv(KvVersion::V2) => "KV v2",
        Engine::Transit => "Transit",
    }
}
