//! File reads that cannot block or exhaust memory, and writes that never leave a half-written
//! file behind and keep what the user had.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Reads a whole regular file of at most `limit` bytes. A FIFO, socket, device or folder where a
/// file is expected is an error (reading a FIFO would block for ever), and so is a file larger
/// than `limit` (checked before anything is allocated; the read itself stops at the limit).
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let meta = check_regular(path, limit)?;
    let too_large = || {
        io::Error::new(io::ErrorKind::InvalidData, format!("larger than the {} MiB this file may have", limit >> 20))
    };
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path)?.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// That `path` is a regular file of at most `limit` bytes, for readers that open the file
/// themselves (checkpoint stores): a FIFO or folder is an error instead of a blocked read.
pub fn check_regular(path: &Path, limit: u64) -> io::Result<fs::Metadata> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{what}, where a file is expected")));
    }
    if meta.len() > limit {
        let message = format!("larger than the {} MiB this file may have", limit >> 20);
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    Ok(meta)
}

/// Whether `a` and `b` name one file (through `..`, symlinks or hard links); `false` when either
/// does not exist. A writer checks it before replacing what it reads.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        x.dev() == y.dev() && x.ino() == y.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (x, y);
        fs::canonicalize(a).ok().is_some_and(|a| fs::canonicalize(b).ok().is_some_and(|b| a == b))
    }
}

/// 64-bit FNV-1a: stable across builds and platforms (std's hasher is not), enough to tell one
/// file from another (a checkpoint's optimiser state) or to name one (a recovery file).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// [`read_limited`] as UTF-8 text.
pub fn read_text_limited(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A temporary file beside `path`, created exclusively under an unpredictable name (so it can
/// neither clobber nor follow anything planted there), written and flushed to disk.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file path", path.display())))?;
    loop {
        let tmp =
            dir.join(format!(".{}.tmp-{}-{:016x}", name.to_string_lossy(), std::process::id(), rand::random::<u64>()));
        let mut file = match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        return Ok(tmp);
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Makes a rename durable: the folder's entry is flushed too (best effort where folders cannot
/// be opened for syncing).
fn sync_dir(dir: &Path) {
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder (so the rename never
/// crosses file systems) is written, flushed to disk and renamed over the target (a symlink at
/// `path` is replaced, not followed), then the folder is flushed. A crash at any point leaves
/// either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent(path));
    Ok(())
}

/// The backup kept beside `path` by [`write_atomic_with_backup`]: `<name>.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".bak");
    path.with_file_name(name)
}

/// Like [`write_atomic`], but first keeps the current file (if any) as `<name>.bak`, itself
/// written atomically (a symlink planted at the backup's name is replaced, never written
/// through), so an annotation save the user regrets can be undone by hand.
pub fn write_atomic_with_backup(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_all_atomic(&[(path.to_path_buf(), bytes.to_vec())], true).map_err(|e| e.source)
}

/// Why [`write_all_atomic`] stopped: the file it failed on and which files it had replaced.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}{}", path.display(), if replaced.is_empty() { String::new() } else { format!(" ({} other file(s) were already replaced)", replaced.len()) })]
pub struct BatchWriteError {
    pub path: PathBuf,
    pub source: io::Error,
    /// Files already holding their new content when it stopped.
    pub replaced: Vec<PathBuf>,
}

/// Writes several files as close to all-or-nothing as a file system allows: every new version
/// (and, with `backup`, every `.bak` of the current one) is written to a temporary file first,
/// and only when all of them are on disk are they renamed into place. A failure while preparing
/// changes nothing; a failure during the renames (rare: they are metadata operations in one
/// folder each) says which files were already replaced.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)], backup: bool) -> Result<(), BatchWriteError> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let fail = |staged: &[(PathBuf, PathBuf)], path: &Path, source: io::Error| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
        BatchWriteError { path: path.to_path_buf(), source, replaced: Vec::new() }
    };
    for (path, bytes) in files {
        if backup && fs::symlink_metadata(path).is_ok() {
            let old = read_limited(path, u64::MAX).map_err(|e| fail(&staged, path, e))?;
            let bak = backup_path(path);
            let tmp = write_temp(&bak, &old).map_err(|e| fail(&staged, &bak, e))?;
            staged.push((tmp, bak));
        }
        let tmp = write_temp(path, bytes).map_err(|e| fail(&staged, path, e))?;
        staged.push((tmp, path.clone()));
    }
    let mut replaced = Vec::new();
    for (i, (tmp, target)) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(tmp, target) {
            for (tmp, _) in &staged[i..] {
                let _ = fs::remove_file(tmp);
            }
            let replaced = replaced.into_iter().filter(|p| files.iter().any(|(f, _)| f == p)).collect();
            return Err(BatchWriteError { path: target.clone(), source, replaced });
        }
        replaced.push(target.clone());
        sync_dir(parent(target));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }

    #[test]
    fn backup_keeps_the_previous_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("label.txt");
        write_atomic_with_backup(&path, b"first").unwrap();
        assert!(!backup_path(&path).exists(), "nothing to back up on the first write");
        write_atomic_with_backup(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read(backup_path(&path)).unwrap(), b"first");
    }

    /// A symlink planted at the backup's name (or at the target) is replaced, never written
    /// through: the file it points to is untouched.
    #[cfg(unix)]
    #[test]
    fn planted_symlinks_are_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, b"keep me").unwrap();
        let path = dir.path().join("label.txt");
        fs::write(&path, b"old").unwrap();
        std::os::unix::fs::symlink(&victim, backup_path(&path)).unwrap();
        write_atomic_with_backup(&path, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(fs::read(backup_path(&path)).unwrap(), b"old");
        assert!(!fs::symlink_metadata(backup_path(&path)).unwrap().file_type().is_symlink());
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"through?").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn a_batch_that_cannot_be_prepared_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        fs::write(&a, b"a0").unwrap();
        let missing = dir.path().join("no-such-folder/b.txt");
        let err = write_all_atomic(&[(a.clone(), b"a1".to_vec()), (missing, b"b1".to_vec())], true).unwrap_err();
        assert!(err.to_string().contains("b.txt") && err.replaced.is_empty(), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"a0");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")], "no temporary file left");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_folder_is_an_error_not_a_blocked_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.txt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_limited(&fifo, 1 << 20).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        let err = read_limited(dir.path(), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        let big = dir.path().join("big.txt");
        fs::write(&big, vec![b'x'; 3 << 20]).unwrap();
        let err = read_limited(&big, 2 << 20).unwrap_err().to_string();
        assert!(err.contains("2 MiB"), "{err}");
    }
}
