//! The SSRF token: found as the AWS agent finds it, compared in constant time, and re-read
//! when the file holding it changes.
//!
//! The first variable of `ssrf_env_variables` that is set holds either the token or
//! `file://PATH` (the file's content, surrounding whitespace trimmed, is the token). A token
//! file is checked for changes (modification time, size, inode) at most once a second, and
//! at once when a presented token does not match, so a rotated token is accepted as soon as
//! it is written and the old one stops working within a second.
//!
//! Unlike the AWS agent, an empty token is refused at start (an empty header would otherwise
//! match it), and the comparison does not stop at the first differing byte (`subtle`); only
//! the length can be learnt from timing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use kms::{Error, ErrorKind};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// How often a token file is checked for changes while tokens match.
const RECHECK: Duration = Duration::from_secs(1);

/// The SSRF token requests must carry. `Debug` never shows it.
pub struct Token {
    current: ArcSwap<Zeroizing<Vec<u8>>>,
    file: Option<FileSource>,
    variable: String,
}

struct FileSource {
    path: PathBuf,
    seen: Mutex<Seen>,
}

struct Seen {
    stamp: Option<Stamp>,
    checked: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

fn read_file(variable: &str, path: &Path) -> kms::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Configuration,
            format!(
                "cannot read the token file {} named by {variable}: {}",
                path.display(),
                e.kind()
            ),
        )
    })?);
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!(
                "the token file {} named by {variable} is empty",
                path.display()
            ),
        ));
    }
    Ok(Zeroizing::new(trimmed.to_vec()))
}

impl Token {
    /// Finds the token in the first of `variables` that `lookup` knows.
    ///
    /// # Errors
    ///
    /// [`Configuration`](ErrorKind::Configuration) when none is set, the token is empty or
    /// its file cannot be read (naming the variable and the path, never the token).
    pub fn find(
        variables: &[String],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> kms::Result<Self> {
        let Some((variable, value)) = variables
            .iter()
            .find_map(|v| lookup(v).map(|value| (v.clone(), Zeroizing::new(value))))
        else {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!(
                    "no SSRF token: none of {} is set (set one to the token, or to file://PATH)",
                    variables.join(", ")
                ),
            ));
        };
        if let Some(path) = value.strip_prefix("file://") {
            let path = PathBuf::from(path);
            let seen = Seen {
                stamp: stamp(&path),
                checked: Instant::now(),
            };
            let token = read_file(&variable, &path)?;
            return Ok(Self {
                current: ArcSwap::from_pointee(token),
                file: Some(FileSource {
                    path,
                    seen: Mutex::new(seen),
                }),
                variable,
            });
        }
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::Configuration,
                format!("the SSRF token in {variable} is empty"),
            ));
        }
        Ok(Self {
            current: ArcSwap::from_pointee(Zeroizing::new(value.as_bytes().to_vec())),
            file: None,
            variable,
        })
    }

    /// The variable the token was found in.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// Whether `presented` is the token (constant time in its content).
    pub fn matches(&self, presented: &[u8]) -> bool {
        if let Some(file) = &self.file {
            self.recheck(file, false);
        }
        if self.equal(presented) {
            return true;
        }
        match &self.file {
            Some(file) if self.recheck(file, true) => self.equal(presented),
            _ => false,
        }
    }

    fn equal(&self, presented: &[u8]) -> bool {
        let current: Arc<Zeroizing<Vec<u8>>> = self.current.load_full();
        current.as_slice().ct_eq(presented).into()
    }

    /// Re-reads the file if it changed (at most every [`RECHECK`] unless `now`); returns
    /// whether the token changed. Another thread already checking means "no change yet".
    fn recheck(&self, file: &FileSource, now: bool) -> bool {
        let Some(mut seen) = file.seen.try_lock() else {
            return false;
        };
        if !now && seen.checked.elapsed() < RECHECK {
            return false;
        }
        seen.checked = Instant::now();
        let new = stamp(&file.path);
        if new == seen.stamp || new.is_none() {
            // Unchanged, or gone for a moment (a rename in progress): keep the last token.
            return false;
        }
        match read_file(&self.variable, &file.path) {
            Ok(token) => {
                seen.stamp = new;
                let changed = self.current.load().as_slice() != token.as_slice();
                self.current.store(Arc::new(token));
                if changed {
                    tracing::info!(path = %file.path.display(), "SSRF token file changed: new token in use");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(error = %e, "keeping the previous SSRF token");
                false
            }
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("variable", &self.variable)
            .field("file", &self.file.as_ref().map(|s| &s.path))
            .field("token", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars() -> Vec<String> {
        [
            "AWS_TOKEN",
            "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_first_set_variable_wins() {
        let t = Token::find(
            &vars(),
            env(&[("AWS_SESSION_TOKEN", "b"), ("AWS_TOKEN", "a")]),
        )
        .unwrap();
        assert_eq!(t.variable(), "AWS_TOKEN");
        assert!(t.matches(b"a"));
        assert!(!t.matches(b"b"));
        let t = Token::find(&vars(), env(&[("AWS_CONTAINER_AUTHORIZATION_TOKEN", "c")])).unwrap();
        assert!(t.matches(b"c"));
    }

    #[test]
    fn missing_or_empty_tokens_are_refused() {
        let e = Token::find(&vars(), env(&[])).unwrap_err();
        assert!(e.message().contains("AWS_TOKEN, AWS_SESSION_TOKEN"), "{e}");
        let e = Token::find(&vars(), env(&[("AWS_TOKEN", "")])).unwrap_err();
        assert!(e.message().contains("empty"), "{e}");
        let e =
            Token::find(&vars(), env(&[("AWS_TOKEN", "file:///nonexistent/token")])).unwrap_err();
        assert!(e.message().contains("/nonexistent/token"), "{e}");
    }

    #[test]
    fn wrong_lengths_and_prefixes_do_not_match() {
        let t = Token::find(&vars(), env(&[("AWS_TOKEN", "secret-token")])).unwrap();
        assert!(!t.matches(b""));
        assert!(!t.matches(b"secret"));
        assert!(!t.matches(b"secret-token-and-more"));
        assert!(!t.matches(b"Secret-token"));
        assert!(t.matches(b"secret-token"));
    }

    #[test]
    fn a_token_file_is_trimmed_and_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let value = format!("file://{}", path.display());
        let t = Token::find(&vars(), env(&[("AWS_TOKEN", &value)])).unwrap();
        assert!(t.matches(b"first"));
        // Replaced by rename, as token rotators do.
        let tmp = dir.path().join("token.new");
        std::fs::write(&tmp, "second-token\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(
            t.matches(b"second-token"),
            "the new token is accepted at once"
        );
        assert!(!t.matches(b"first"), "the old one no longer");
        // A vanished file keeps the last token.
        std::fs::remove_file(&path).unwrap();
        assert!(t.matches(b"second-token"));
    }

    #[test]
    fn debug_redacts() {
        let t = Token::find(&vars(), env(&[("AWS_TOKEN", "hunter2-token")])).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("AWS_TOKEN"));
    }
}
