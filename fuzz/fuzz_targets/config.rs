//! The whole configuration loader: `Config::from_toml_str`, then `with_vars` (the `KMS_…`
//! environment overrides).
//!
//! Input: TOML, a line `---`, then one `NAME=value` variable per line; `$SECRET` and
//! `$TOKEN` become canaries. Where a canary sits only in credential positions, no error and
//! no `Debug` of the loaded configuration (or of any of its stores) may show it. A loaded
//! configuration's stores are all reachable by name, and the default is one of them.
#![no_main]

use kms::Config;
use kms_fuzz::{
    SECRET, TOKEN, assert_clean, assert_error_clean, env_placement, plant, toml_placement,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once("\n---\n").unwrap_or((text, ""));
    let toml = plant(toml);
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (plant(k), plant(v)))
        .collect();
    let hide: Vec<&str> = [SECRET, TOKEN]
        .into_iter()
        .filter(|c| {
            toml_placement(&toml, c)
                .or(env_placement(&vars, c))
                .must_hide()
        })
        .collect();
    let loaded = Config::from_toml_str(&toml).and_then(|c| c.with_vars(vars.iter().cloned()));
    match loaded {
        Ok(config) => {
            let debug = format!("{config:?}");
            for c in &hide {
                assert_clean("Debug of a loaded configuration", &debug, c);
            }
            let names: Vec<String> = config.store_names().map(str::to_owned).collect();
            for n in &names {
                let store = config.store(n).expect("a listed store");
                let debug = format!("{store:?}");
                for c in &hide {
                    assert_clean("Debug of a store's configuration", &debug, c);
                }
            }
            if let Some(d) = config.default_store() {
                assert!(names.iter().any(|n| n == d), "default {d:?} is not a store");
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), kms::ErrorKind::Configuration, "{e}");
            assert_error_clean(&e, &hide);
        }
    }
});
