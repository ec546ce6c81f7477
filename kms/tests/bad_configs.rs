//! The corpus of bad configurations: each, given as TOML or as a URI, fails with a
//! `Configuration` error that names the key and says what is accepted. Nothing here reaches a
//! server: every case fails in parsing or in the validation done before a backend is called.

use kms::{Config, ErrorKind};

enum Input {
    /// A TOML file whose store is `t`.
    Toml(&'static str),
    /// A URI.
    Uri(&'static str),
    /// Environment variables applied (`Config::with_vars`) to a file with a memory store `t`.
    Env(&'static [(&'static str, &'static str)]),
}

use Input::{Env, Toml, Uri};

/// A value standing for a credential: no error may show it (every case is checked).
const SECRET: &str = "S3CRET";

/// (input, the key the error must name, fragments the message must contain).
const CASES: &[(Input, &str, &[&str])] = &[
    // unknown keys, at every level and in both forms
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nttll = \"5m\""),
        "stores.t.cache.ttll",
        &["unknown field `ttll`", "`ttl`", "`negative_ttl`"],
    ),
    (
        Toml("[stores.t.s3]\nbucket = \"b\""),
        "stores.t.s3",
        &["unknown field `s3`", "`vault`", "`memory`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.vault.auth]\nmethod = \"token\"\npassword = \"x\""),
        "stores.t.vault.auth.password",
        &["unknown field `password`", "`secret_id`"],
    ),
    (Toml("storse = 1"), "storse", &["unknown key", "`stores`"]),
    (
        Uri("memory://?bogus=1"),
        "bogus",
        &["unknown field `bogus`", "`max_versions`"],
    ),
    (
        Uri("memory://?cache.size=5"),
        "cache.size",
        &["unknown field `size`", "`max_entries`"],
    ),
    // wrong types
    (
        Toml("[stores.t.memory]\nmax_versions = \"many\""),
        "stores.t.memory.max_versions",
        &["\"many\"", "integer"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.retry]\nretry_store = \"yes\""),
        "stores.t.retry.retry_store",
        &["\"yes\"", "true or false"],
    ),
    (
        Toml("[stores.t.memory]\nmax_versions = -1"),
        "stores.t.memory.max_versions",
        &["-1", "non-negative"],
    ),
    (
        Toml("[stores.t.vault]\nmount = 5"),
        "stores.t.vault.mount",
        &["integer", "string"],
    ),
    (Toml("[stores]\nt = 5"), "stores.t", &["expected a table"]),
    (
        Toml("[stores.t]\nuri = 5"),
        "stores.t.uri",
        &["expected a URI string"],
    ),
    // durations
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nttl = \"5 minutes\""),
        "stores.t.cache.ttl",
        &["\"5 minutes\"", "\"5m\"", "no spaces"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nttl = 300"),
        "stores.t.cache.ttl",
        &["300", "no unit"],
    ),
    (
        Uri("memory://?cache.ttl=5%20minutes"),
        "cache.ttl",
        &["\"5 minutes\"", "no spaces"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.retry]\nbudget = \"forever\""),
        "stores.t.retry.budget",
        &["\"forever\"", "\"off\""],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.timeout]\nall = \"0s\""),
        "stores.t.timeout.all",
        &["0s", "more than zero"],
    ),
    // enumerations
    (
        Toml("[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.method = \"ldap\""),
        "stores.t.vault.auth.method",
        &["unknown variant `ldap`", "`approle`"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nkv_version = 3\nauth.token = \"t\"",
        ),
        "stores.t.vault.kv_version",
        &["3", "1 or 2"],
    ),
    (
        Toml("[stores.t.aws]\ndeletion = \"later\""),
        "stores.t.aws.deletion",
        &["unknown variant `later`", "`force`"],
    ),
    (
        Toml("[stores.t.keyring]\nservice = \"s\"\nplatform_store = \"gnome\""),
        "stores.t.keyring.platform_store",
        &["\"gnome\"", "`keyutils`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.envelope]\nprovider = \"rot13\""),
        "stores.t.envelope.provider",
        &["\"rot13\"", "`aws-kms`"],
    ),
    // missing required options, and backends
    (
        Toml("[stores.t.cache]\nttl = \"1m\""),
        "stores.t",
        &["missing", "`memory`", "`vault`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.keyring]\nservice = \"s\""),
        "stores.t",
        &["several backends", "memory, keyring"],
    ),
    (
        Toml("[stores.t.vault]\nauth.token = \"t\""),
        "stores.t.vault.address",
        &["missing", "address"],
    ),
    (
        Toml("[stores.t.vault]\naddress = \"http://127.0.0.1:1\""),
        "stores.t.vault.auth.token",
        &["missing", "token"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth = { method = \"approle\", role_id = \"r\" }",
        ),
        "stores.t.vault.auth.secret_id",
        &["missing", "approle"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth = { method = \"kubernetes\" }",
        ),
        "stores.t.vault.auth.role",
        &["missing", "kubernetes"],
    ),
    (
        Uri("vault+http://127.0.0.1:1/secret"),
        "auth.token",
        &["missing", "token"],
    ),
    (
        Toml("[stores.t.keyring]\nplatform_store = \"keyutils\""),
        "stores.t.keyring.service",
        &["missing", "service"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.envelope]\ncontext.a = \"b\""),
        "stores.t.envelope.provider",
        &["missing", "`local`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.envelope]\nprovider = \"local\""),
        "stores.t.envelope.master_key",
        &["missing", "32-byte"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.envelope]\nprovider = \"vault-transit\"\nkey = \"k\""),
        "stores.t.envelope.vault.address",
        &["missing", "envelope.vault"],
    ),
    (
        Toml("[stores.t.aws]\naccess_key_id = \"AKID\""),
        "stores.t.aws.secret_access_key",
        &["missing"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nclient_cert = \"/c.pem\"\nauth.token = \"t\"",
        ),
        "stores.t.vault.client_key",
        &["missing", "private key"],
    ),
    // options that do not go together
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth = { token = \"t\", role = \"r\" }",
        ),
        "stores.t.vault.auth.role",
        &["not used by auth method `token`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.envelope]\nprovider = \"local-ephemeral\"\nkey = \"k\""),
        "stores.t.envelope.key",
        &["not used by provider `local-ephemeral`"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nmax_entries = 10\nmax_bytes = 1000"),
        "stores.t.cache.max_bytes",
        &["either `max_entries` or `max_bytes`"],
    ),
    (
        Toml("[stores.t.aws]\ndeletion = \"force\"\nrecovery_window_days = 7"),
        "stores.t.aws.recovery_window_days",
        &["not used with"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nkv_version = 1\nremove_mode = \"soft_delete\"\nauth.token = \"t\"",
        ),
        "stores.t.vault.remove_mode",
        &["KV v2"],
    ),
    // out of range (values a builder would silently clamp)
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\njitter = 2.0"),
        "stores.t.cache.jitter",
        &["2", "0.0 to 0.9"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nrefresh_ahead = 0.01"),
        "stores.t.cache.refresh_ahead",
        &["0.01", "0.05 to 1.0"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.breaker]\nwindow = 0"),
        "stores.t.breaker.window",
        &["0", "at least 1"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.breaker]\nfailure_ratio = 1.5"),
        "stores.t.breaker.failure_ratio",
        &["1.5", "at most 1.0"],
    ),
    (
        Toml("[stores.t.memory]\nmax_versions = 0"),
        "stores.t.memory.max_versions",
        &["0", "at least 1"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nrenew_fraction = 1.5\nauth.token = \"t\"",
        ),
        "stores.t.vault.renew_fraction",
        &["1.5", "0.1 to 0.9"],
    ),
    (
        Toml(
            "[stores.t.aws]\nrecovery_window_days = 3\nregion = \"us-east-1\"\naccess_key_id = \"a\"\nsecret_access_key = \"b\"",
        ),
        "stores.t.aws.recovery_window_days",
        &["3 days", "7 to 30"],
    ),
    (
        Toml(
            "[stores.t.aws]\nlist_page_size = 0\nregion = \"us-east-1\"\naccess_key_id = \"a\"\nsecret_access_key = \"b\"",
        ),
        "stores.t.aws.list_page_size",
        &["0", "1 to 100"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.metrics]\nprefix = \"9bad\""),
        "stores.t.metrics.prefix",
        &["\"9bad\"", "letters"],
    ),
    (
        Toml(
            "[stores.t.memory]\n[stores.t.envelope]\nprovider = \"local\"\nmaster_key = \"dG9vIHNob3J0\"",
        ),
        "stores.t.envelope.master_key",
        &["32 bytes", "value not shown"],
    ),
    (
        Toml("[stores.t.aws]\nendpoint_url = \"127.0.0.1:5000\""),
        "stores.t.aws.endpoint_url",
        &["\"127.0.0.1:5000\"", "http://"],
    ),
    // names and references
    (
        Toml("default = \"nope\"\n[stores.t.memory]"),
        "default",
        &["\"nope\"", "`t`"],
    ),
    (
        Toml("[stores.Pay.memory]"),
        "stores.Pay",
        &["invalid store name", "lower-case"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"env:KMS_SURELY_UNSET_VARIABLE_911\"",
        ),
        "stores.t.vault.auth.token",
        &["KMS_SURELY_UNSET_VARIABLE_911", "not set"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"file:/nonexistent/kms/token\"",
        ),
        "stores.t.vault.auth.token",
        &["/nonexistent/kms/token", "cannot read"],
    ),
    (
        Toml("[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"env:\""),
        "stores.t.vault.auth.token",
        &["needs a variable name"],
    ),
    // features not compiled in (on Linux, the Apple and Windows stores never are)
    (
        Toml("[stores.t.keyring]\nservice = \"s\"\nplatform_store = \"apple-keychain\""),
        "stores.t.keyring.platform_store",
        &["not compiled in", "`keyring-apple`"],
    ),
    (
        Uri("keyring://s?platform_store=windows"),
        "platform_store",
        &["not compiled in", "`keyring-windows`"],
    ),
    // URI grammar
    (
        Uri("s3://bucket/path"),
        "scheme",
        &["unsupported scheme \"s3\"", "`vault+https`", "`aws-sm`"],
    ),
    (
        Uri("memory://?max_versions=1&max_versions=2"),
        "max_versions",
        &["more than once"],
    ),
    (
        Uri("vault+https://vault.example/secret?mount=kv"),
        "mount",
        &["given twice"],
    ),
    (
        Uri("vault+https://root@vault.example/secret"),
        "userinfo",
        &["not accepted", "env:NAME"],
    ),
    (Uri("memory://#frag"), "fragment", &["no `#fragment`"]),
    (Uri("memory://somehost"), "host", &["takes no host"]),
    (Uri("memory:///some/path"), "path", &["takes no path"]),
    (Uri("keyring://"), "host", &["missing", "service"]),
    (
        Uri("aws-sm://us-east-1:443/ns"),
        "port",
        &["region", "endpoint_url"],
    ),
    (
        Uri("vault+https:///secret"),
        "host",
        &["missing", "Vault server"],
    ),
    // environment look-alikes: a KMS_ variable that sets nothing is named, never ignored
    (
        Env(&[("KMS_CACHE_TTL", "5m")]),
        "KMS_CACHE_TTL",
        &["sets no option", "KMS_STORES__<NAME>__CACHE__TTL"],
    ),
    (
        Env(&[("KMS_CACHE__TTL", "5m")]),
        "KMS_CACHE__TTL",
        &["sets no option"],
    ),
    (Env(&[("KMS_", "x")]), "KMS_", &["sets no option"]),
    (
        Env(&[("KMS_STORES_T__CACHE__TTL", "5m")]),
        "KMS_STORES_T__CACHE__TTL",
        &["sets no option", "`__` between segments"],
    ),
    (
        Env(&[("KMS_STORE__T__URI", "memory://")]),
        "KMS_STORE__T__URI",
        &["sets no option"],
    ),
    (
        Env(&[("kms_stores__t__cache__ttl", "5m")]),
        "kms_stores__t__cache__ttl",
        &["upper-case"],
    ),
    (Env(&[("Kms_Default", "t")]), "Kms_Default", &["upper-case"]),
    (
        Env(&[("KMS_DEFAULTS", "t")]),
        "KMS_DEFAULTS",
        &["sets no option"],
    ),
    (
        Env(&[("KMS_VAULT_TOKEN", "S3CRET")]),
        "KMS_VAULT_TOKEN",
        &["sets no option", "`env:` reference"],
    ),
    (
        Env(&[("KMS_VAULT_ADDR", "http://127.0.0.1:8200")]),
        "KMS_VAULT_ADDR",
        &["sets no option"],
    ),
    (
        Env(&[("KMS_CONFIG_FILE", "/etc/kms.toml")]),
        "KMS_CONFIG_FILE",
        &["sets no option"],
    ),
    // URI decoding (RFC 3986): a malformed escape names the key, never the value
    (
        Uri(
            "vault+http://127.0.0.1:1/secret?auth.method=approle&auth.role_id=ab%zzS3CRET&auth.secret_id=x",
        ),
        "auth.role_id",
        &["malformed percent-escape", "value not shown", "%25"],
    ),
    (
        Uri("vault+http://127.0.0.1:1/secret?auth.token=S3CRET%"),
        "auth.token",
        &["malformed percent-escape"],
    ),
    (
        Uri("vault+http://127.0.0.1:1/secret?auth.token=S3CRET%4"),
        "auth.token",
        &["malformed percent-escape"],
    ),
    (
        Uri("vault+http://127.0.0.1:1/secret?auth.token=%ffS3CRET"),
        "auth.token",
        &["not UTF-8"],
    ),
    (
        Uri("memory://?cache.ttl=5%m"),
        "cache.ttl",
        &["malformed percent-escape"],
    ),
    (
        Uri("memory://?cache.t%zzl=5m"),
        "query",
        &["a query key", "malformed percent-escape"],
    ),
    (
        Uri("vault+http://127.0.0.1:1/sec%zzret?auth.token=t"),
        "path",
        &["malformed percent-escape"],
    ),
    (
        Uri("keyring://my%zzservice"),
        "host",
        &["malformed percent-escape"],
    ),
    // reference look-alikes in credential fields are errors, not the secret
    (
        Uri(
            "vault+http://127.0.0.1:1/secret?auth.method=approle&auth.role_id=r&auth.secret_id=ENV:SID",
        ),
        "auth.secret_id",
        &["looks like a reference", "`env:NAME`", "lower-case"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"Env:VAULT_TOKEN\"",
        ),
        "stores.t.vault.auth.token",
        &["looks like a reference"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"vault:secret/data/S3CRET\"",
        ),
        "stores.t.vault.auth.token",
        &["looks like a reference"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \" env:VAULT_TOKEN\"",
        ),
        "stores.t.vault.auth.token",
        &["looks like a reference"],
    ),
    (
        Toml("[stores.t.aws]\naccess_key_id = \"FILE:/run/secrets/id\"\nsecret_access_key = \"x\""),
        "stores.t.aws.access_key_id",
        &["looks like a reference"],
    ),
    (
        Toml(
            "[stores.t.memory]\n[stores.t.envelope]\nprovider = \"local\"\nmaster_key = \"https://keys.example/S3CRET\"",
        ),
        "stores.t.envelope.master_key",
        &["looks like a reference"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"file://run/secrets/token\"",
        ),
        "stores.t.vault.auth.token",
        &["not a URL with a host"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"file:run/secrets/token\"",
        ),
        "stores.t.vault.auth.token",
        &["absolute path"],
    ),
    (
        Toml(
            "[stores.t.vault]\naddress = \"http://127.0.0.1:1\"\nauth.token = \"env:$VAULT_TOKEN\"",
        ),
        "stores.t.vault.auth.token",
        &["names a variable"],
    ),
    (
        Uri(
            "vault+http://127.0.0.1:1/secret?envelope.provider=vault-transit&envelope.key=k&envelope.vault.address=http://127.0.0.1:1&envelope.vault.auth.token=Env:T",
        ),
        "envelope.vault.auth.token",
        &["looks like a reference"],
    ),
    // a path copied from Vault's HTTP API, with the URI to write instead
    (
        Uri("vault+http://127.0.0.1:8200/secret/data?auth.token=S3CRET"),
        "path",
        &[
            "copies Vault's HTTP API",
            "use `vault+http://127.0.0.1:8200/secret?…`",
        ],
    ),
    (
        Uri("vault+http://127.0.0.1:8200/secret/data/app/db?auth.token=t"),
        "path",
        &[
            "`/data/`",
            "use `vault+http://127.0.0.1:8200/secret/app/db?…`",
        ],
    ),
    (
        Uri("vault+https://vault.example/kv/metadata/team"),
        "path",
        &["`/metadata/`", "use `vault+https://vault.example/kv/team`"],
    ),
    (
        Uri("vault+http://127.0.0.1:8200/v1/secret/data/app?auth.token=t"),
        "path",
        &["`/v1/`", "use `vault+http://127.0.0.1:8200/secret/app?…`"],
    ),
    (
        Uri("vault://vault.example:8200/v1/secret"),
        "path",
        &["`/v1/`", "use `vault://vault.example:8200/secret`"],
    ),
    (
        Uri("vault+http://127.0.0.1:8200/v1/kv1/data/x?kv_version=1&auth.token=t"),
        "path",
        &["`/v1/`", "use `vault+http://127.0.0.1:8200/kv1/data/x?…`"],
    ),
    // reports of refused credentials
    (
        Uri("memory://?cache.rejection_rate_limit=0s"),
        "cache.rejection_rate_limit",
        &["invalid duration 0s", "more than zero"],
    ),
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nrejection_retry_budget = \"1h\""),
        "stores.t.cache.rejection_retry_budget",
        &["at most 15m"],
    ),
    (
        Uri("memory://?cache.rejection_retry_budget=soon"),
        "cache.rejection_retry_budget",
        &["invalid duration"],
    ),
    // options that would change nothing
    (
        Toml("[stores.t.memory]\n[stores.t.cache]\nstale_while_revalidate = \"0s\""),
        "stores.t.cache.stale_while_revalidate",
        &["needs `stale_if_error`"],
    ),
];

async fn error_of(input: &Input) -> kms::Error {
    match input {
        Toml(text) => match Config::from_toml_str(text) {
            Err(e) => e,
            Ok(config) => config
                .open("t")
                .await
                .err()
                .unwrap_or_else(|| panic!("{text:?} built a store")),
        },
        Uri(uri) => kms::open(uri)
            .await
            .err()
            .unwrap_or_else(|| panic!("{uri:?} built a store")),
        Env(vars) => match Config::from_toml_str("[stores.t.memory]")
            .unwrap()
            .with_vars(vars.iter().copied())
        {
            Err(e) => e,
            Ok(config) => config
                .open("t")
                .await
                .err()
                .unwrap_or_else(|| panic!("{vars:?} built a store")),
        },
    }
}

/// The `vault` CLI's variables, which fill unset Vault options: the corpus runs without them
/// (in a child process when the environment has them) so that "missing" stays missing.
const VAULT_VARIABLES: [&str; 4] = [
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
];

#[tokio::test]
async fn every_bad_configuration_fails_with_a_configuration_error_naming_its_key() {
    if VAULT_VARIABLES
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args([
            "--exact",
            "every_bad_configuration_fails_with_a_configuration_error_naming_its_key",
        ]);
        for v in VAULT_VARIABLES {
            child.env_remove(v);
        }
        let out = child.output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert!(CASES.len() >= 30, "the corpus has {} cases", CASES.len());
    let mut failures = Vec::new();
    for (input, key, fragments) in CASES {
        let err = error_of(input).await;
        let shown = err.to_string();
        println!("{shown}");
        let mut problems = Vec::new();
        if err.kind() != ErrorKind::Configuration {
            problems.push(format!("kind {:?}", err.kind()));
        }
        if !shown.contains(&format!("`{key}`")) {
            problems.push(format!("does not name `{key}`"));
        }
        for f in *fragments {
            if !shown.contains(f) {
                problems.push(format!("lacks {f:?}"));
            }
        }
        if format!("{shown} {err:?}").contains(SECRET) {
            problems.push("shows the credential".to_owned());
        }
        if !problems.is_empty() {
            let what = match input {
                Toml(t) => format!("TOML {t:?}"),
                Uri(u) => format!("URI {u:?}"),
                Env(v) => format!("variables {v:?}"),
            };
            failures.push(format!(
                "{what}\n  -> {shown}\n  problems: {}",
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let err = Config::from_toml_str("[stores.t.memory]\nmax_versions = = 3\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.message().contains("invalid TOML (line 2)"), "{err}");
}

#[tokio::test]
async fn an_unknown_store_name_lists_the_known_ones() {
    let config = Config::from_toml_str("[stores.a.memory]\n[stores.b.memory]").unwrap();
    let err = config.open("c").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(
        err.message().contains("`stores.c`") && err.message().contains("`a`, `b`"),
        "{err}"
    );
    let err = config.open_default().await.unwrap_err();
    assert!(err.message().contains("`default`"), "{err}");
}
