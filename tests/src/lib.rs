//! Cross-crate integration tests for the workspace live in `tests/`; this library is empty.
