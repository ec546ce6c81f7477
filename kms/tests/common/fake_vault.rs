//! A fake Vault on [`Server`]: enough of the HTTP API for the facade's Vault store and Vault
//! Transit (token lookup and renewal, AppRole and Kubernetes logins, mount descriptions, KV
//! v2 and v1 — a mount whose name starts with `kv1` is KV v1 — and Transit with a
//! transparent "encryption"), recording every request so a test can observe what an option
//! changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::http::{Handler, Request, Response, Server};

/// Token lookups answer this lease (seconds) and renewability.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lease {
    pub ttl: u64,
    pub renewable: bool,
}

#[derive(Default)]
struct State {
    /// "mount/key" → (data, version, deleted).
    kv: BTreeMap<String, (Value, u64, bool)>,
    lease: Lease,
    /// Answer KV requests with 403 "invalid token".
    reject_tokens: bool,
    /// Creation times other than the default, by "mount/key".
    created: BTreeMap<String, String>,
    /// Transit keys created ("mount/keys/name").
    transit_keys: std::collections::BTreeSet<String>,
}

/// A fake Vault server.
#[derive(Clone)]
pub struct FakeVault {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

impl std::ops::Deref for FakeVault {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl FakeVault {
    pub async fn start() -> Self {
        let state: Arc<Mutex<State>> = Arc::default();
        let logins = Arc::new(AtomicU64::new(0));
        let s = state.clone();
        let handler: Handler = Arc::new(move |r: &Request| Some(answer(&s, &logins, r)));
        Self {
            server: Server::start(handler).await,
            state,
        }
    }

    pub fn set_lease(&self, lease: Lease) {
        self.state.lock().lease = lease;
    }

    pub fn reject_tokens(&self, on: bool) {
        self.state.lock().reject_tokens = on;
    }

    /// Writes `data` (a JSON object) at `mount/key` as if another client had.
    pub fn seed(&self, path: &str, data: Value) {
        let mut st = self.state.lock();
        let version = st.kv.get(path).map_or(0, |e| e.1) + 1;
        st.kv.insert(path.to_owned(), (data, version, false));
    }

    /// As [`seed`](Self::seed), with this creation time (RFC 3339) for the version.
    pub fn seed_created(&self, path: &str, data: Value, created: &str) {
        self.seed(path, data);
        self.state
            .lock()
            .created
            .insert(path.to_owned(), created.to_owned());
    }

    /// The data at `mount/key`, if present and not deleted.
    pub fn data(&self, path: &str) -> Option<Value> {
        let st = self.state.lock();
        st.kv.get(path).filter(|e| !e.2).map(|e| e.0.clone())
    }

    /// Requests whose path (after `/v1/`) starts with `prefix`.
    pub fn api_requests(&self, prefix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.trim_start_matches("/v1/").starts_with(prefix))
            .collect()
    }
}

fn errors(status: u16, msgs: &[&str]) -> Response {
    Response::json(status, json!({ "errors": msgs }))
}

fn answer(state: &Mutex<State>, logins: &AtomicU64, r: &Request) -> Response {
    let Some(path) = r.path.strip_prefix("/v1/") else {
        return errors(404, &[]);
    };
    let list = r.method == "LIST" || r.query.contains("list=true");
    if path == "sys/health" {
        return Response::json(
            200,
            json!({ "initialized": true, "sealed": false, "standby": false }),
        );
    }
    if path == "auth/token/lookup-self" {
        let lease = state.lock().lease;
        return Response::json(
            200,
            json!({ "data": { "ttl": lease.ttl, "renewable": lease.renewable, "policies": ["root"] } }),
        );
    }
    if path == "auth/token/renew-self" {
        let lease = state.lock().lease;
        return Response::json(
            200,
            json!({ "auth": { "client_token": r.header("x-vault-token").unwrap_or_default(),
                              "lease_duration": lease.ttl, "renewable": lease.renewable } }),
        );
    }
    if path.starts_with("auth/") && path.ends_with("/login") {
        let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
        return Response::json(
            200,
            json!({ "auth": { "client_token": format!("fake-login-{n}"),
                              "lease_duration": 3600, "renewable": false } }),
        );
    }
    if let Some(mount) = path.strip_prefix("sys/internal/ui/mounts/") {
        let first = mount.split('/').next().unwrap_or_default();
        let (kind, version) = if first.starts_with("transit") {
            ("transit", "")
        } else if first.starts_with("kv1") {
            ("kv", "1")
        } else {
            ("kv", "2")
        };
        return Response::json(
            200,
            json!({ "data": { "path": format!("{first}/"), "type": kind,
                              "options": { "version": version } } }),
        );
    }
    if state.lock().reject_tokens {
        return errors(403, &["permission denied", "invalid token"]);
    }
    let (mount, rest) = path.split_once('/').unwrap_or((path, ""));
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let mut st = state.lock();
    if mount.starts_with("transit") {
        return transit(&mut st, path, rest, r);
    }
    if mount.starts_with("kv1") {
        let full = format!("{mount}/{rest}");
        return match r.method.as_str() {
            _ if list => listing(&st.kv, &full),
            "GET" => match st.kv.get(&full).filter(|e| !e.2) {
                Some((data, _, _)) => Response::json(200, json!({ "data": data })),
                None => errors(404, &[]),
            },
            "POST" | "PUT" => {
                let version = st.kv.get(&full).map_or(0, |e| e.1) + 1;
                st.kv.insert(full, (body, version, false));
                Response::json(204, Value::Null)
            }
            "DELETE" => {
                st.kv.remove(&full);
                Response::json(204, Value::Null)
            }
            _ => errors(405, &[]),
        };
    }
    if let Some(key) = rest.strip_prefix("data/") {
        let full = format!("{mount}/{key}");
        return match r.method.as_str() {
            "GET" => match st.kv.get(&full).filter(|e| !e.2) {
                Some((data, version, _)) => {
                    let created = st
                        .created
                        .get(&full)
                        .map_or("2026-01-01T00:00:00Z", String::as_str);
                    Response::json(
                        200,
                        json!({ "data": { "data": data, "metadata": {
                            "version": version, "created_time": created,
                            "deletion_time": "", "destroyed": false } } }),
                    )
                }
                None => errors(404, &[]),
            },
            "POST" | "PUT" => {
                let version = st.kv.get(&full).map_or(0, |e| e.1) + 1;
                st.created.remove(&full);
                st.kv.insert(full, (body["data"].clone(), version, false));
                Response::json(
                    200,
                    json!({ "data": { "version": version, "created_time": "2026-01-01T00:00:00Z" } }),
                )
            }
            "DELETE" => {
                if let Some(e) = st.kv.get_mut(&full) {
                    e.2 = true;
                }
                Response::json(204, Value::Null)
            }
            _ => errors(405, &[]),
        };
    }
    if let Some(key) = rest.strip_prefix("metadata/") {
        let full = format!("{mount}/{key}");
        return match r.method.as_str() {
            _ if list => listing(&st.kv, &full),
            "GET" => match st.kv.get(&full) {
                Some((_, version, deleted)) => {
                    let deletion_time = if *deleted { "2026-01-02T00:00:00Z" } else { "" };
                    Response::json(
                        200,
                        json!({ "data": { "current_version": version, "versions": {
                            version.to_string(): { "deletion_time": deletion_time, "destroyed": false }
                        } } }),
                    )
                }
                None => errors(404, &[]),
            },
            "DELETE" => {
                st.kv.remove(&full);
                Response::json(204, Value::Null)
            }
            _ => errors(405, &[]),
        };
    }
    errors(404, &[])
}

fn listing(kv: &BTreeMap<String, (Value, u64, bool)>, dir: &str) -> Response {
    let dir = format!("{}/", dir.trim_end_matches('/'));
    let mut keys: Vec<String> = kv
        .keys()
        .filter_map(|k| k.strip_prefix(&dir))
        .map(|rest| match rest.split_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => rest.to_owned(),
        })
        .collect();
    keys.dedup();
    if keys.is_empty() {
        return errors(404, &[]);
    }
    Response::json(200, json!({ "data": { "keys": keys } }))
}

/// Transit with a transparent "encryption": the ciphertext of data key `k` is
/// `vault:v1:<base64 k>` (enough to observe which calls an option causes).
fn transit(st: &mut State, path: &str, rest: &str, r: &Request) -> Response {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if rest.starts_with("keys/") {
        return match r.method.as_str() {
            "GET" if st.transit_keys.contains(path) => Response::json(
                200,
                json!({ "data": { "type": "aes256-gcm96", "derived": true, "latest_version": 1 } }),
            ),
            "GET" => errors(404, &[]),
            _ => {
                st.transit_keys.insert(path.to_owned());
                Response::json(204, Value::Null)
            }
        };
    }
    if rest.starts_with("datakey/") {
        let key: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(r.body.len() as u8))
            .collect();
        let plain = b64.encode(&key);
        return Response::json(
            200,
            json!({ "data": { "plaintext": plain, "ciphertext": format!("vault:v1:{plain}"), "key_version": 1 } }),
        );
    }
    if rest.starts_with("decrypt/") {
        let ct = body["ciphertext"].as_str().unwrap_or_default();
        let plain = ct.strip_prefix("vault:v1:").unwrap_or_default();
        return Response::json(200, json!({ "data": { "plaintext": plain } }));
    }
    if rest.starts_with("encrypt/") {
        let plain = body["plaintext"].as_str().unwrap_or_default();
        return Response::json(
            200,
            json!({ "data": { "ciphertext": format!("vault:v1:{plain}"), "key_version": 1 } }),
        );
    }
    errors(404, &[])
}
