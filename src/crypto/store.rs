//! Keyring file I/O, the only file access in `crypto`: load, create (never overwriting) and
//! replace atomically (temp file in the same directory, fsync, rename, fsync the directory).

use super::keyring::{KeyringError, KeyringFile};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A keyring file that cannot be read or written; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: already exists; refusing to overwrite a keyring (use `pgvigil keys rotate`)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: KeyringError },
}

impl StoreError {
    /// I/O failures are runtime failures (exit 1); the rest are bad input (exit 2).
    pub fn is_io(&self) -> bool {
        matches!(self, StoreError::Io { .. })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl KeyringFile {
    /// Read and validate a keyring file (no master key needed).
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = fs::read_to_string(path).map_err(io(path))?;
        KeyringFile::from_json(&text).map_err(|source| StoreError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// Write a new keyring; fails with `Exists` if `path` exists, even when racing another
    /// writer (the final step is a hard link, which never replaces).
    pub fn save_new(&self, path: &Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Exists {
                path: path.to_owned(),
            });
        }
        let temp = write_temp(path, &self.json_for(path)?)?;
        let linked = fs::hard_link(&temp, path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => sync_dir(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StoreError::Exists {
                path: path.to_owned(),
            }),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Replace an existing keyring atomically: readers see the old file or the new one.
    pub fn save_replace(&self, path: &Path) -> Result<(), StoreError> {
        let temp = write_temp(path, &self.json_for(path)?)?;
        if let Err(e) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(io(path)(e));
        }
        sync_dir(path)
    }
}

impl KeyringFile {
    fn json_for(&self, path: &Path) -> Result<String, StoreError> {
        self.to_json().map_err(|source| StoreError::Invalid {
            path: path.to_owned(),
            source,
        })
    }
}

/// `.<name>.tmp-<pid>` beside `path`, mode 0600, written and fsynced.
fn write_temp(path: &Path, text: &str) -> Result<PathBuf, StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keyring".to_owned());
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io(path)(e));
    }
    Ok(temp)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(path))
}
