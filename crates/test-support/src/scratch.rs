//! Temporary directories for what a test writes (results, records), removed when dropped.

use tempfile::TempDir;

/// A new empty temporary directory whose name starts with `shadowcat-PREFIX-`; it is removed
/// with its contents when the value is dropped.
///
/// # Panics
///
/// When it cannot be created.
///
/// ```
/// let dir = shadowcat_test_support::temp_dir("doc");
/// std::fs::write(dir.path().join("note"), "x").unwrap();
/// assert!(dir.path().join("note").is_file());
/// ```
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("shadowcat-{prefix}-"))
        .tempdir()
        .unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"))
}
