//! The `kms` command against the Linux kernel keyring. Run inside the keyring session wrapper
//! (as `scripts/test` does):
//! `dbus-run-session -- bash kms-backend-keyring/scripts/keyring-session.sh cargo nextest run -p kms-cli`.
//! Without it these tests fail (never skip): `KMS_TEST_KEYUTILS` must be set.

mod common;

use common::*;

fn require_session() {
    assert!(
        std::env::var_os("KMS_TEST_KEYUTILS").is_some(),
        "KMS_TEST_KEYUTILS is not set: run under kms-backend-keyring/scripts/keyring-session.sh (see this file's docs)"
    );
}

#[test]
fn every_command_against_the_kernel_keyring() {
    require_session();
    every_command(&|p| keyring_uri(p), 32_767, Versions::None);
}

#[test]
fn migrate_keyring_to_vault_and_back_is_equal() {
    require_session();
    let tag = unique("kr2v");
    let keyring = keyring_uri(&tag);
    let vault = vault_uri(&tag);
    let keys: Vec<(String, String)> = (0..12)
        .map(|i| (format!("svc/k{i:02}"), format!("{tag}-v{i}")))
        .collect();
    seed(&keyring, &keys);
    let out = expect(migrate(&keyring, &vault, &["--concurrency", "4"]), b"", 0);
    assert!(
        out.stdout
            .starts_with("migrate: copied 12, skipped 0, failed 0"),
        "{}",
        out.stdout
    );
    assert_hidden(&out, &format!("{tag}-v1"));
    let out = expect(kms().args(["diff", &keyring, &vault]), b"", 0);
    assert!(out.stdout.contains("12 equal"), "{}", out.stdout);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for uri in [&keyring, &vault] {
        let mut args = vec!["rm", "--yes"];
        args.extend_from_slice(&names);
        expect(kms_on(uri, &args), b"", 0);
    }
}

#[test]
fn field_reads_and_writes_one_field_of_a_json_value() {
    require_session();
    field_on_whole_values(&keyring_uri(&unique("field")), 8);
}
