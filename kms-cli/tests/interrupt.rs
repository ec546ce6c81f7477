//! A migrate from OpenBao to moto interrupted with SIGINT half-way, then re-run: every key
//! copied is whole, nothing is lost, and the re-run copies only what is missing.

mod common;

use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::*;

const KEYS: usize = 300;

fn count(uri: &str) -> usize {
    let out = expect(kms_on(uri, &["ls"]), b"", 0);
    out.stdout.lines().count()
}

#[test]
fn sigint_half_way_then_rerun_finishes_without_recopying() {
    let tag = unique("sigint");
    let from = vault_uri(&tag);
    let to = aws_uri(&tag);
    let keys: Vec<(String, String)> = (0..KEYS)
        .map(|i| (format!("bulk/k{i:04}"), format!("{tag}-value-{i}")))
        .collect();
    seed(&from, &keys);

    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("kms"))
        .args(["migrate", &from, &to, "--concurrency", "1"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&to) < 10 {
        assert!(
            Instant::now() < deadline,
            "the migrate copied nothing in 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the migrate finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("interrupted:"), "{stdout}");
    assert!(
        !stdout.contains(&format!("{tag}-value-")) && !stderr.contains(&format!("{tag}-value-"))
    );

    // Nothing half-written: every key in the destination equals its source.
    let copied = count(&to);
    assert!((10..KEYS).contains(&copied), "copied {copied} of {KEYS}");
    let out = expect(kms().args(["diff", &from, &to, "--json"]), b"", 0);
    let d = json(&out);
    assert_eq!(d["different"].as_array().unwrap().len(), 0, "{d}");
    assert_eq!(d["only_in_b"].as_array().unwrap().len(), 0, "{d}");
    assert_eq!(d["equal"].as_array().unwrap().len(), copied);

    // The re-run copies the rest, skips what is done.
    let out = expect(migrate(&from, &to, &["--concurrency", "8"]), b"", 0);
    let expected = format!(
        "migrate: copied {}, skipped {copied}, failed 0",
        KEYS - copied
    );
    assert!(
        out.stdout.starts_with(&expected),
        "{}\nwanted {expected}",
        out.stdout
    );
    let out = expect(kms().args(["diff", &from, &to]), b"", 0);
    assert!(
        out.stdout.contains(&format!(
            "0 only in A, 0 only in B, 0 different, {KEYS} equal"
        )),
        "{}",
        out.stdout
    );

    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for uri in [&from, &to] {
        let mut args = vec!["rm", "--yes"];
        args.extend_from_slice(&names);
        expect(kms_on(uri, &args), b"", 0);
    }
}
