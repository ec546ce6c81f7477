//! Cache-hit latency through the agent: one keep-alive HTTP/1 connection (hyper client),
//! `GET /secretsmanager/get?secretId=…` answered from the store's cache, over TCP and over
//! the Unix socket, beside the same read in-process (what the HTTP hop costs).
//!
//! `cargo bench -p kms-agent --bench hit`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kms::{KeyName, KeyStoreExt};
use kms_agent::Agent;
use tokio::sync::Mutex;

const TOKEN: &str = "bench-token";

async fn connect_tcp(addr: std::net::SocketAddr) -> SendRequest<Empty<Bytes>> {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn connect_unix(path: &std::path::Path) -> SendRequest<Empty<Bytes>> {
    let s = tokio::net::UnixStream::connect(path).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> Bytes {
    let req = http::Request::get(path)
        .header("host", "localhost")
        .header("X-Aws-Parameters-Secrets-Token", TOKEN)
        .body(Empty::new())
        .unwrap();
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent.limits]\nheader_read_timeout = \"10m\"\n\
             [agent.tcp]\naddress = \"127.0.0.1:0\"\n[agent.unix]\npath = \"{}\"\n\
             [stores.mem.memory]\n[stores.mem.cache]\nttl = \"1h\"\n[stores.mem.metrics]\n",
            sock.display()
        ),
    )
    .unwrap();
    let env: HashMap<String, String> = [("AWS_TOKEN".to_owned(), TOKEN.to_owned())].into();
    let agent = rt.block_on(async {
        let agent = Agent::start_with_env(&config, Arc::new(move |k: &str| env.get(k).cloned()))
            .await
            .unwrap();
        let store = agent
            .live()
            .snapshot()
            .store("mem")
            .unwrap()
            .store()
            .clone();
        store
            .put("app/db/password", "correct horse battery staple")
            .await
            .unwrap();
        agent
    });
    let tcp = Arc::new(Mutex::new(
        rt.block_on(connect_tcp(agent.tcp_addr().unwrap())),
    ));
    let unix = Arc::new(Mutex::new(rt.block_on(connect_unix(&sock))));
    let store = agent
        .live()
        .snapshot()
        .store("mem")
        .unwrap()
        .store()
        .clone();
    let key = KeyName::new("app/db/password").unwrap();

    let mut g = c.benchmark_group("agent_cache_hit");
    g.measurement_time(Duration::from_secs(5));
    for (name, sender) in [("tcp", tcp.clone()), ("unix", unix.clone())] {
        for (route, path) in [
            (
                "secretsmanager_get",
                "/secretsmanager/get?secretId=app/db/password",
            ),
            ("kms_raw", "/kms/v1/secrets/app/db/password?format=raw"),
        ] {
            let sender = sender.clone();
            g.bench_function(format!("{name}/{route}"), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let sender = sender.clone();
                    async move {
                        let mut s = sender.lock().await;
                        let start = Instant::now();
                        for _ in 0..iters {
                            std::hint::black_box(get(&mut s, path).await);
                        }
                        start.elapsed()
                    }
                });
            });
        }
    }
    g.bench_function("in_process/store_get", |b| {
        b.to_async(&rt)
            .iter(|| async { std::hint::black_box(store.get(&key).await.unwrap()) });
    });
    g.finish();
    rt.block_on(agent.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
