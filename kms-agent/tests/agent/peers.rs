//! Against the real peers: OpenBao (Vault API) and moto (AWS Secrets Manager), read through
//! the agent by plain HTTP clients using exactly the AWS agent's headers: `curl` and Python
//! `requests` as in the AWS agent's README, and a bare hyper client.

use tokio::process::Command;

use kms::KeyStoreExt;

use crate::common::{
    Proxy, TCP0, TOKEN, TestAgent, aws_endpoint, aws_store, eventually, open_beside, unique,
    vault_addr, vault_store,
};

/// The README's curl call, with the port and the token file filled in.
async fn readme_curl(port: u16, token_file: &std::path::Path, secret_id: &str) -> String {
    let script = format!(
        "curl -v -H \\\n    \"X-Aws-Parameters-Secrets-Token: $(<{})\" \\\n    'http://localhost:{port}/secretsmanager/get?secretId={secret_id}'; \\\n    echo",
        token_file.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("bash and curl are installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The README's Python function, with the URL and the token file filled in.
async fn readme_python(port: u16, token_file: &std::path::Path, secret_id: &str) -> String {
    let script = format!(
        r#"
import requests

# Function that fetches the secret from Workload Credentials Provider for the provided secret id.
def get_secret():
    # Construct the URL for the GET request
    url = f"http://localhost:{port}/secretsmanager/get?secretId={secret_id}"

    # Get the SSRF token from the token file
    with open('{token}') as fp:
        token = fp.read()

    headers = {{
        "X-Aws-Parameters-Secrets-Token": token.strip()
    }}

    try:
        # Send the GET request with headers
        response = requests.get(url, headers=headers)

        # Check if the request was successful
        if response.status_code == 200:
            # Return the secret value
            return response.text
        else:
            # Handle error cases
            raise Exception(f"Status code {{response.status_code}} - {{response.text}}")

    except Exception as e:
        # Handle network errors
        raise Exception(f"Error: {{e}}")

print(get_secret())
"#,
        token = token_file.display()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("python3 is installed (with requests: the peers' venv)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_readme_clients_read_vault_and_moto_secrets() {
    let prefix = unique("kms-agent-tests/readme");
    let namespace = unique("kms-agent-readme");
    let stores = format!(
        "default = \"vault\"\n{}{}",
        vault_store("vault", &prefix, &vault_addr(), ""),
        aws_store("aws", &namespace, "")
    );
    let vault = open_beside(&stores, "vault").await;
    vault
        .put("app/db", r#"{"username":"app","password":"vault-pw"}"#)
        .await
        .unwrap();
    let aws = open_beside(&stores, "aws").await;
    aws.put("app-key", "moto-value").await.unwrap();

    let a = TestAgent::start(&format!("{stores}{TCP0}")).await;
    let port = a.agent().tcp_addr().unwrap().port();
    let token_file = crate::common::write_file(a.dir.path(), "awssmatoken", &format!("{TOKEN}\n"));

    let body = readme_curl(port, &token_file, "app/db").await;
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(v["Name"], "app/db");
    assert_eq!(
        v["SecretString"],
        r#"{"username":"app","password":"vault-pw"}"#
    );
    assert_eq!(v["VersionId"], "1");
    assert_eq!(v["VersionStages"], serde_json::json!(["AWSCURRENT"]));

    let moto_arn = "arn:kms:secretsmanager:aws:000000000000:secret:app-key";
    for body in [
        readme_python(port, &token_file, moto_arn).await,
        readme_curl(port, &token_file, moto_arn).await,
    ] {
        let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(v["SecretString"], "moto-value");
        assert_eq!(v["ARN"], moto_arn);
        assert!(
            v["VersionId"].as_str().unwrap().len() >= 32,
            "an AWS version id: {v}"
        );
        assert!(
            v["CreatedDate"].as_str().unwrap().parse::<f64>().is_ok(),
            "{v}"
        );
    }
    // Python's error path: the agent's 400 with Secrets Manager's error.
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import requests\nr = requests.get('http://localhost:{port}/secretsmanager/get?secretId=nope', headers={{'X-Aws-Parameters-Secrets-Token': '{TOKEN}'}})\nprint(r.status_code, r.json()['__type'])"
        ))
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "400 ResourceNotFoundException"
    );
}

#[tokio::test]
async fn refresh_now_reads_through_the_cache() {
    let prefix = unique("kms-agent-tests/refresh");
    let backend = vault_store("vault", &prefix, &vault_addr(), "");
    let cached = format!("{backend}[stores.vault.cache]\nttl = \"1h\"\n");
    let behind = open_beside(&backend, "vault").await;
    behind.put("k", "one").await.unwrap();
    let a = TestAgent::start(&format!("{cached}{TCP0}")).await;
    assert_eq!(a.get("/v1/k").await.json()["SecretString"], "one");
    behind.put("k", "two").await.unwrap();
    assert_eq!(a.get("/v1/k").await.json()["SecretString"], "one", "cached");
    let v = a.get("/v1/k?refreshNow=true").await.json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionId"].as_str()),
        (Some("two"), Some("2"))
    );
    assert_eq!(
        a.get("/v1/k").await.json()["SecretString"],
        "two",
        "the cache was updated"
    );
    // The native API's refresh too, and a version, and a field.
    behind.put("k", r#"{"password":"three"}"#).await.unwrap();
    let v = a
        .get("/kms/v1/secrets/k?refresh=true&field=password")
        .await
        .json();
    assert_eq!(v["value"], "three");
    assert_eq!(
        a.get("/kms/v1/secrets/k?version=1").await.json()["value"],
        "one"
    );
    // AWSPREVIOUS on Vault is the version before the current one.
    let v = a
        .get("/secretsmanager/get?secretId=k&versionStage=AWSPREVIOUS")
        .await
        .json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionId"].as_str()),
        (Some("two"), Some("2"))
    );
    assert_eq!(
        a.get("/v1/missing").await.json()["__type"],
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn moto_versions_and_staging_labels() {
    let namespace = unique("kms-agent-stages");
    let stores = aws_store("aws", &namespace, "");
    let behind = open_beside(&stores, "aws").await;
    let first = behind.put("rotating", "v-one").await.unwrap();
    behind.put("rotating", "v-two").await.unwrap();
    let a = TestAgent::start(&format!("{stores}[stores.aws.cache]\nttl = \"1h\"\n{TCP0}")).await;
    let v = a.get("/secretsmanager/get?secretId=rotating").await.json();
    assert_eq!(v["SecretString"], "v-two");
    let v = a
        .get("/secretsmanager/get?secretId=rotating&versionStage=AWSPREVIOUS")
        .await
        .json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionStages"].clone()),
        (Some("v-one"), serde_json::json!(["AWSPREVIOUS"]))
    );
    let first = first.version.unwrap();
    let v = a
        .get(&format!(
            "/secretsmanager/get?secretId=rotating&versionId={first}"
        ))
        .await
        .json();
    assert_eq!(
        (v["SecretString"].as_str(), v["VersionId"].as_str()),
        (Some("v-one"), Some(&*first))
    );
    let r = a
        .get("/secretsmanager/get?secretId=rotating&versionStage=NOSUCHLABEL")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["__type"], "ResourceNotFoundException");
    let r = a.get("/secretsmanager/get?secretId=missing").await;
    assert_eq!(
        (r.status, r.json()["__type"].as_str()),
        (400, Some("ResourceNotFoundException"))
    );
}

#[tokio::test]
async fn prefetch_holds_readiness_until_it_is_done() {
    let namespace = unique("kms-agent-prefetch");
    let direct = aws_store("aws", &namespace, "");
    open_beside(&direct, "aws")
        .await
        .put("warm", "w")
        .await
        .unwrap();
    // Every call to moto waits in the proxy until it is released (building the store needs
    // no call).
    let proxy = Proxy::start(&aws_endpoint()).await;
    let held = direct.replace(&aws_endpoint(), &proxy.url());
    let a = TestAgent::start(&format!(
        "{held}[stores.aws.cache]\nttl = \"1h\"\n[agent]\nreadiness_timeout = \"200ms\"\n\
         [capabilities.secrets_manager.prefetch]\nsecrets = [{{ secret_id = \"warm\" }}]\n{TCP0}"
    ))
    .await;
    let r = a.request("GET", "/readyz", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["prefetch"]["state"], "pending");
    proxy.release();
    eventually("ready once the prefetch is done", async || {
        a.request("GET", "/readyz", &[]).await.status == 200
    })
    .await;
    let v = a.request("GET", "/readyz", &[]).await.json();
    assert_eq!(
        v["prefetch"],
        serde_json::json!({"state": "done", "fetched": 1, "failed": 0})
    );
    let cache = a
        .agent()
        .live()
        .snapshot()
        .store("aws")
        .unwrap()
        .cache()
        .unwrap()
        .clone();
    assert_eq!(cache.stats().loads, 1, "the prefetch loaded the secret");
    assert_eq!(a.get("/v1/warm").await.json()["SecretString"], "w");
    assert_eq!(
        (cache.stats().loads, cache.stats().hits),
        (1, 1),
        "and the read was a cache hit"
    );
}
