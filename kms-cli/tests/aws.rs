//! The `kms` command against AWS Secrets Manager as moto emulates it
//! (`KMS_TEST_AWS_ENDPOINT`, region us-east-1, dummy credentials), under a namespace of its own.

mod common;

use common::*;

#[test]
fn every_command_against_moto() {
    every_command(&|p| aws_uri(p), 65_536, Versions::Opaque);
}

#[test]
fn put_cas_is_unsupported_on_secrets_manager() {
    let prefix = unique("cas");
    let out = expect(
        kms_on(&aws_uri(&prefix), &["put", "k", "--cas", "1"]),
        b"v",
        8,
    );
    assert!(out.stderr.contains("check-and-set"), "{}", out.stderr);
    // Nothing was written.
    expect(kms_on(&aws_uri(&prefix), &["get", "k"]), b"", 3);
}

#[test]
fn field_reads_and_writes_one_field_of_a_json_secret_string() {
    field_on_whole_values(&aws_uri(&unique("field")), 8);
}
