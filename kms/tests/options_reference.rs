//! The README's option reference cannot drift: every documented key is accepted (its example
//! value deserialises), and every key the configuration structs accept is documented (the
//! accepted field names of each table are read from serde's `deny_unknown_fields` answer to
//! an unknown probe key, so a new struct field fails this test until it is documented).

use std::collections::BTreeSet;

use kms::{Config, ErrorKind};

const README: &str = include_str!("../README.md");

/// (key, example) of every row of the reference table.
fn documented() -> Vec<(String, String)> {
    let start = README.find("<!-- options:start -->").expect("start marker");
    let end = README.find("<!-- options:end -->").expect("end marker");
    README[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | key | type | default | example | meaning |
            let key = cells[1].trim_matches('`').to_owned();
            let example = cells[4].trim_matches('`').to_owned();
            (key, example)
        })
        .collect()
}

/// A TOML document setting `key` (store-relative, `<name>` placeholders filled) to `value`.
fn toml_setting(key: &str, value: &str) -> String {
    let key = key.replace("<name>", "x");
    let (table, leaf) = match key.rsplit_once('.') {
        Some((t, l)) => (format!("stores.t.{t}"), l.to_owned()),
        None => ("stores.t".to_owned(), key.clone()),
    };
    // A backend so that layer-only documents are complete stores.
    let backend = if key.starts_with("memory.")
        || key == "uri"
        || ["vault.", "aws.", "keyring."]
            .iter()
            .any(|b| key.starts_with(b))
    {
        String::new()
    } else {
        "[stores.t.memory]\n".to_owned()
    };
    format!("{backend}[{table}]\n{leaf} = {value}\n")
}

#[test]
fn every_documented_option_is_accepted() {
    let rows = documented();
    assert!(rows.len() > 100, "only {} rows parsed", rows.len());
    let mut keys = BTreeSet::new();
    for (key, example) in &rows {
        assert!(keys.insert(key.clone()), "{key} is documented twice");
        let doc = toml_setting(key, example);
        if let Err(e) = Config::from_toml_str(&doc) {
            panic!("documented option `{key}` = {example} is not accepted: {e}\n{doc}");
        }
    }
}

/// The fields a table accepts, from the `unknown field` error of a probe key.
fn accepted_fields(table: &str) -> Vec<String> {
    let header = if table.is_empty() {
        "[stores.t]".to_owned()
    } else {
        format!("[stores.t.{table}]")
    };
    let doc = format!("{header}\nzz_probe_zz = 1\n");
    let err = Config::from_toml_str(&doc).expect_err("a probe key is rejected");
    assert_eq!(err.kind(), ErrorKind::Configuration);
    let msg = err.message();
    let expected = msg
        .split_once("expected")
        .unwrap_or_else(|| panic!("no field list for `{table}`: {msg}"))
        .1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_accepted_option_is_documented() {
    let documented: BTreeSet<String> = documented().into_iter().map(|(k, _)| k).collect();
    // Tables to probe: the store itself and every table a documented key lies in.
    let mut tables: BTreeSet<String> = BTreeSet::from([String::new()]);
    for key in &documented {
        let parts: Vec<&str> = key.split('.').collect();
        for n in 1..parts.len() {
            if parts[n - 1] != "<name>" && !parts[..n].contains(&"<name>") {
                tables.insert(parts[..n].join("."));
            }
        }
    }
    // Free-form maps (`tags`, `context`) take any key: they are not probed.
    tables.retain(|t| !documented.iter().any(|k| k == &format!("{t}.<name>")));
    let mut missing = Vec::new();
    for table in &tables {
        for field in accepted_fields(table) {
            let full = if table.is_empty() {
                field.clone()
            } else {
                format!("{table}.{field}")
            };
            let covered = documented
                .iter()
                .any(|k| k == &full || k.starts_with(&format!("{full}.")));
            if !covered {
                missing.push(full);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "accepted but not in the README's option reference: {missing:?}"
    );
}

#[test]
fn the_probe_sees_nested_tables() {
    // The probe itself works at every depth (a broken probe would make the test above vacuous).
    assert!(accepted_fields("").contains(&"cache".to_owned()));
    assert!(accepted_fields("vault.auth").contains(&"secret_id".to_owned()));
    assert!(accepted_fields("metrics.failure_recorder").contains(&"top_failures".to_owned()));
    assert!(accepted_fields("envelope.vault.auth").contains(&"jwt_path".to_owned()));
}

/// The options the tests mark with `observes!("key", …)`, read from the test sources.
fn observed() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        &mut files,
    );
    let mut keys = BTreeSet::new();
    // This file and the macro's definition mention the mark without using it.
    files.retain(|f| !f.ends_with("options_reference.rs") && !f.ends_with("common/mod.rs"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (start, _) in text.match_indices("observes!(") {
            let args = &text[start + "observes!(".len()..];
            let args = &args[..args.find(')').expect("a closing parenthesis")];
            keys.extend(args.split('"').skip(1).step_by(2).map(str::to_owned));
        }
    }
    keys
}

/// Parsing is not applying: every documented option is observed by a test that checks what
/// it changes (`observes!` in `effects.rs`, `aws.rs`, `keyring.rs`, `memory.rs`), and every
/// observed key is a documented one.
#[test]
fn every_documented_option_has_an_effect_test() {
    let documented: BTreeSet<String> = documented().into_iter().map(|(k, _)| k).collect();
    let observed = observed();
    assert!(
        observed.len() > 50,
        "only {} observed keys found",
        observed.len()
    );
    let unobserved: Vec<&String> = documented.difference(&observed).collect();
    assert!(
        unobserved.is_empty(),
        "documented options no test observes the effect of: {unobserved:?}"
    );
    let undocumented: Vec<&String> = observed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "`observes!` names options the README does not document: {undocumented:?}"
    );
}
