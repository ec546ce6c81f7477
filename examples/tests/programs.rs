//! Runs the example programs as a newcomer would, against the peers `scripts/test` starts,
//! and checks what they print.

use std::process::Command;

fn run(exe: &str, args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{exe} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn peer(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with scripts/test, which starts the peers")
    })
}

#[test]
fn quickstart_runs_on_memory() {
    let out = run(env!("CARGO_BIN_EXE_quickstart"), &[], &[]);
    assert!(out.contains("stack: "), "{out}");
    assert!(out.contains("kms_key_operations_total"), "{out}");
    assert!(
        !out.contains("correct horse"),
        "a value was printed:\n{out}"
    );
}

#[test]
fn aws_runs_against_the_emulator() {
    let endpoint = peer("KMS_TEST_AWS_ENDPOINT");
    let out = run(env!("CARGO_BIN_EXE_aws"), &[&endpoint], &[]);
    assert!(out.contains("AWSPREVIOUS is 14 bytes"), "{out}");
    assert!(out.contains("after remove: [not_found]"), "{out}");
    assert!(out.contains("reads back as 16 plaintext bytes"), "{out}");
    assert!(
        out.contains(
            "kms_key_operations_total{operation=\"store\",backend=\"aws\",store=\"aws\",status=\"success\"} 3"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "kms_key_operations_total{operation=\"generate_data_key\",backend=\"aws_kms\",store=\"aws_kms\",status=\"success\"} 1"
        ),
        "the KMS provider is instrumented: {out}"
    );
    for value in [
        "first password",
        "rotated password",
        "enveloped secret",
        "testing\"",
    ] {
        assert!(!out.contains(value), "printed {value:?}:\n{out}");
    }
}

#[test]
fn vault_runs_against_openbao() {
    let out = run(
        env!("CARGO_BIN_EXE_vault"),
        &[],
        &[
            ("VAULT_ADDR", peer("KMS_TEST_VAULT_ADDR")),
            ("VAULT_TOKEN", peer("KMS_TEST_VAULT_TOKEN")),
        ],
    );
    assert!(out.contains("after remove: not_found"), "{out}");
    assert!(!out.contains("enveloped secret"), "{out}");
}
