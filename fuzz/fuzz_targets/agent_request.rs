//! The agent's request parsing and configuration.
//!
//! Input: line 1 a request path and query, line 2 a presented SSRF token, the rest the
//! agent's TOML configuration; `$SECRET` / `$TOKEN` become canaries.
//! - `Route::of` classifies every path, as the AWS agent's order says;
//! - `GetQuery::from_query` / `from_path` accept only a non-empty secret id, a valid role
//!   ARN and a boolean `refreshNow`, and their errors never show a query value;
//! - the token matches exactly the configured token, and its `Debug` never shows it;
//! - `AgentConfig::from_toml_str` errors and `Debug` never show a credential.
#![no_main]

use kms_agent::AgentConfig;
use kms_agent::route::Route;
use kms_agent::secrets_manager::query::GetQuery;
use kms_agent::token::Token;
use kms_fuzz::{SECRET, TOKEN, assert_clean, assert_error_clean, plant, toml_placement};
use libfuzzer_sys::fuzz_target;

/// Whether every `canary` in `path_and_query` is inside a query value (after `=`).
fn only_in_values(path_and_query: &str, canary: &str) -> bool {
    let Some((_, query)) = path_and_query.split_once('?') else {
        return !path_and_query.contains(canary);
    };
    let query = query.split('#').next().unwrap_or("");
    let in_values: usize = query
        .split('&')
        .map(|p| {
            p.split_once('=')
                .map_or(0, |(_, v)| v.matches(canary).count())
        })
        .sum();
    in_values == path_and_query.matches(canary).count()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let path_and_query = plant(parts.next().unwrap_or(""));
    let presented = plant(parts.next().unwrap_or(""));
    let toml = plant(parts.next().unwrap_or(""));

    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    let route = Route::of(path, "/v1/", true);
    match path {
        "/ping" => assert_eq!(route, Route::Ping),
        "/secretsmanager/get" => assert_eq!(route, Route::SecretsManagerQuery),
        p if p.starts_with("/v1/") => assert_eq!(route, Route::SecretsManagerPath),
        p if !p.starts_with("/kms/v1/") && !["/healthz", "/readyz"].contains(&p) => {
            assert_eq!(route, Route::NotFound, "{p:?}")
        }
        _ => {}
    }
    let hide: Vec<&str> = [SECRET, TOKEN]
        .into_iter()
        .filter(|c| only_in_values(&path_and_query, c))
        .collect();
    let parsed = match route {
        Route::SecretsManagerPath => Some(GetQuery::from_path(&path_and_query, "/v1/")),
        _ => Some(GetQuery::from_query(&path_and_query)),
    };
    match parsed {
        Some(Ok(q)) => {
            assert!(!q.secret_id.is_empty());
            if let Some(arn) = &q.role_arn {
                assert!(arn.starts_with("arn:") && arn.contains(":role/"), "{arn}");
            }
        }
        Some(Err(e)) => {
            for c in &hide {
                assert_clean("a request error", &e.0, c);
            }
        }
        None => {}
    }

    let token = Token::find(&["AWS_TOKEN".to_owned()], |_| Some(TOKEN.to_owned())).unwrap();
    assert_eq!(token.matches(presented.as_bytes()), presented == TOKEN);
    assert_clean("Debug of the token", &format!("{token:?}"), TOKEN);

    let hide: Vec<&str> = [SECRET, TOKEN]
        .into_iter()
        .filter(|c| toml_placement(&toml, c).must_hide())
        .collect();
    match AgentConfig::from_toml_str(&toml) {
        Ok(config) => {
            let debug = format!("{config:?}");
            for c in &hide {
                assert_clean("Debug of the agent configuration", &debug, c);
            }
        }
        Err(e) => assert_error_clean(&e, &hide),
    }
});
