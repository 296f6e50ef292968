//! Helpers for the unit tests that read the shared real data (`FACESTUDIO_ASSETS`).

use std::path::{Path, PathBuf};

/// `$FACESTUDIO_ASSETS`, or `None` after printing that `test` is skipped.
pub(crate) fn assets(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("FACESTUDIO_ASSETS").map(PathBuf::from);
    if dir.is_none() {
        println!("SKIPPED: {test}: FACESTUDIO_ASSETS is not set");
    }
    dir
}

/// The reference outputs folder beside the assets: `$FACESTUDIO_ASSETS/../reference/<part>`.
pub(crate) fn reference_dir(assets: &Path, part: &str) -> PathBuf {
    assets.join("..").join("reference").join(part)
}

/// Reads a float32 `.npy` file, checking its shape.
pub(crate) fn read_npy_f32(path: &Path, shape: &[u64]) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("valid npy header");
    assert_eq!(npy.shape(), shape, "{}", path.display());
    npy.into_vec().expect("float32 data")
}
