//! The `kms` command against AWS Secrets Manager as moto emulates it
//! (`KMS_TEST_AWS_ENDPOINT`, region us-east-1, dummy credentials), under a namespace of its own.

mod common;

use common::*;

#[test]
fn every_command_against_moto() {
    every_command(&|p| aws_uri(p), 65_536, Versions::Opaque);
}

#[test]
fn put_cas_is_check_and_set_on_secrets_manager() {
    let uri = aws_uri(&unique("cas"));
    // A version that is not of AWS's form is a usage error that does not repeat it.
    let out = expect(kms_on(&uri, &["put", "k", "--cas", "1"]), b"v", 2);
    assert!(out.stderr.contains("AWS version ids"), "{}", out.stderr);
    expect(kms_on(&uri, &["get", "k"]), b"", 3);
    let out = expect(
        kms_on(&uri, &["put", "k", "--cas", "0", "--json"]),
        b"one",
        0,
    );
    let v1 = json(&out)["version"].as_str().unwrap().to_owned();
    expect(kms_on(&uri, &["put", "k", "--cas", "0"]), b"lost", 6);
    let out = expect(
        kms_on(&uri, &["put", "k", "--cas", &v1, "--json"]),
        b"two",
        0,
    );
    let v2 = json(&out)["version"].as_str().unwrap().to_owned();
    expect(kms_on(&uri, &["put", "k", "--cas", &v1]), b"stale", 6);
    let out = expect(kms_on(&uri, &["get", "k", "--json", "--reveal"]), b"", 0);
    assert_eq!(json(&out)["value"], "two");
    assert_eq!(json(&out)["version"], v2.as_str());
    let out = expect(
        kms_on(
            &uri,
            &["get", "k", "--version", "AWSPREVIOUS", "--json", "--reveal"],
        ),
        b"",
        0,
    );
    assert_eq!(json(&out)["value"], "one");
}

#[test]
fn two_processes_rotating_one_key_give_one_version_and_one_conflict() {
    rotation_race(&aws_uri(&unique("race")));
}

#[test]
fn field_reads_and_writes_one_field_of_a_json_secret_string() {
    field_on_whole_values(&aws_uri(&unique("field")), 2);
}
