//! The store URI parser, and a memory store opened from it with every layer it configures.
//!
//! Input: a URI; `$SECRET` and `$TOKEN` become canaries. Where a canary sits only in a
//! credential position (userinfo, `auth.token=…`, `envelope.master_key=…`), no error, no
//! `Debug` of the parsed config and no `Display` of the opened stack may show it.
//! A `memory://` URI is opened (metrics into a private registry) and used once: a value
//! written reads back, and the stack's `Display`, metrics text and health report are clean.
#![no_main]

use kms::{KeyStoreExt, MetricsRegistry, Opener, StoreConfig};
use kms_fuzz::{SECRET, TOKEN, assert_clean, assert_error_clean, plant, runtime, uri_placement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let uri = plant(text);
    let hide: Vec<&str> = [SECRET, TOKEN]
        .into_iter()
        .filter(|c| uri_placement(&uri, c).must_hide())
        .collect();
    match StoreConfig::from_uri(&uri) {
        Ok(config) => {
            let debug = format!("{config:?}");
            for c in &hide {
                assert_clean("Debug of a parsed URI", &debug, c);
            }
            // Reading a file named by the input would make the run depend on this machine.
            if config.memory.is_some() && !uri.contains("file:") {
                open_memory(&uri, &hide);
            }
        }
        Err(e) => {
            assert_eq!(e.kind(), kms::ErrorKind::Configuration, "{e}");
            assert_error_clean(&e, &hide);
        }
    }
});

fn open_memory(uri: &str, hide: &[&str]) {
    // A URI may configure retries with long backoffs over tiny deadlines: bound the use.
    // The timer is made before `block_on` polls it: enter the runtime first.
    let _entered = runtime().enter();
    let _ = runtime().block_on(tokio::time::timeout(
        std::time::Duration::from_secs(2),
        async {
            let opener = Opener::new().metrics_registry(MetricsRegistry::new());
            let stack = match opener.open(uri).await {
                Ok(stack) => stack,
                Err(e) => return assert_error_clean(&e, hide),
            };
            let store = stack.store();
            let mut seen = format!("{store} {store:?}");
            match store.put("fuzz/key", SECRET).await {
                Ok(_) => match store.get_value("fuzz/key").await {
                    Ok(v) => assert_eq!(v.expose_secret(), SECRET.as_bytes(), "round trip"),
                    Err(e) => seen.push_str(&format!("{e} {e:?}")),
                },
                Err(e) => seen.push_str(&format!("{e} {e:?}")),
            }
            if let Err(e) = store.get_value("fuzz/missing").await {
                seen.push_str(&format!("{e} {e:?}"));
            }
            seen.push_str(&stack.metrics_text().unwrap_or_default());
            if let Some(report) = stack.health_report() {
                seen.push_str(&format!("{report:?}"));
            }
            // The value written is always a secret; a canary in a credential position too.
            assert_clean("the opened stack", &seen, SECRET);
            for c in hide {
                assert_clean("the opened stack", &seen, c);
            }
        },
    ));
}
