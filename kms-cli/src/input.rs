//! Secret input: values for `put` / `rotate --stdin`, passphrases for `export` / `import`.
//! Everything read lands in zeroizing buffers; nothing read is ever echoed.

use std::io::{IsTerminal, Read};
use std::path::Path;

use age::secrecy::SecretString;
use kms_core::SecretValue;
use zeroize::Zeroizing;

use crate::exit::{CliResult, Exit, Failure};

/// The environment variable `export` / `import` read a passphrase from.
pub const PASSPHRASE_ENV: &str = "KMS_PASSPHRASE";

/// Reads a value: the file's exact bytes, else stdin's exact bytes (a hidden prompt when
/// stdin is a terminal).
///
/// # Errors
///
/// A file or stdin that cannot be read; [`Exit::InvalidInput`] for an empty value.
pub fn read_value(file: Option<&Path>, prompt_for: &str) -> CliResult<SecretValue> {
    let bytes = match file {
        Some(path) => Zeroizing::new(
            std::fs::read(path).map_err(|e| Failure::io(format_args!("{}", path.display()), &e))?,
        ),
        None if std::io::stdin().is_terminal() => {
            let text = Zeroizing::new(
                rpassword::prompt_password(format!("value for {prompt_for}: "))
                    .map_err(|e| Failure::io("reading the terminal", &e))?,
            );
            Zeroizing::new(text.as_bytes().to_vec())
        }
        None => {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::io("reading stdin", &e))?;
            buf
        }
    };
    if bytes.is_empty() {
        return Err(Failure::new(
            Exit::InvalidInput,
            "the value is empty (stdin or the file had no bytes); stores accept 1 byte or more",
        ));
    }
    Ok(SecretValue::new(bytes.to_vec()))
}

/// A passphrase: the first line of `file`, else `KMS_PASSPHRASE`, else a prompt on the
/// terminal (asked twice when `confirm`).
///
/// # Errors
///
/// [`Exit::Usage`] when none is available (no file, no variable, no terminal), or the two
/// entries differ; [`Exit::InvalidInput`] for an empty passphrase.
pub fn passphrase(file: Option<&Path>, confirm: bool) -> CliResult<SecretString> {
    let text: Zeroizing<String> = if let Some(path) = file {
        let all = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format_args!("{}", path.display()), &e))?,
        );
        Zeroizing::new(all.lines().next().unwrap_or_default().to_owned())
    } else if let Ok(env) = std::env::var(PASSPHRASE_ENV) {
        Zeroizing::new(env)
    } else if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("bundle passphrase: ")
                .map_err(|e| Failure::io("reading the terminal", &e))?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("again: ")
                    .map_err(|e| Failure::io("reading the terminal", &e))?,
            );
            if *again != *first {
                return Err(Failure::usage("the passphrases differ"));
            }
        }
        first
    } else {
        return Err(Failure::usage(format!(
            "no passphrase: use --passphrase-file FILE, set {PASSPHRASE_ENV}, run on a terminal, or (export) --recipient"
        )));
    };
    if text.is_empty() {
        return Err(Failure::new(Exit::InvalidInput, "the passphrase is empty"));
    }
    Ok(SecretString::from(text.to_string()))
}
