//! The `kms` command against AWS Secrets Manager as moto emulates it
//! (`KMS_TEST_AWS_ENDPOINT`, region us-east-1, dummy credentials), under a namespace of its own.

mod common;

use common::*;

#[test]
fn every_command_against_moto() {
    every_command(&|p| aws_uri(p), 65_536, Versions::Opaque);
}
