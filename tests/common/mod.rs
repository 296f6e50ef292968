//! Shared by the end-to-end tests.

use std::path::PathBuf;

/// `$FACESTUDIO_ASSETS`, or `None` after printing that `test` is skipped.
pub fn assets(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("FACESTUDIO_ASSETS").map(PathBuf::from);
    if dir.is_none() {
        println!("SKIPPED: {test}: FACESTUDIO_ASSETS is not set");
    }
    dir
}
