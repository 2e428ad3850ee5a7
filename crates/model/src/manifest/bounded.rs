//! Reading what sits at a path only when it can be a manifest or a secret:
//! a regular file no larger than a cap, opened so that a FIFO never blocks.
//!
//! The caps and the nesting limit are far above anything real and far below
//! what would hurt: a path or a variable from outside must never make the
//! loader hang, eat memory, or overflow the stack.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;

/// The largest manifest read: 16 MiB. An `[[accounts]]` table is about 140
/// bytes, so 100,000 accounts (far beyond any real estate of storage
/// accounts) fit; a larger file is not a manifest, and reading it whole
/// would only cost memory before the parser says so.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The largest secret file read: 64 KiB. An account key is 88 bytes, a
/// connection string a few hundred, a client secret or token a few KiB; a
/// larger file is the wrong file (a log, an archive, a device).
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The deepest nesting accepted, of tables and arrays in the file and of
/// `[`/`{` in an `ATSPROV_…` value (and of `__`-separated keys): 32. A
/// manifest needs 4 (`accounts[0].account_key.env`); the limit keeps every
/// recursive walk (parsing, merging, checking, dropping) far from the stack's end.
pub const MAX_NESTING: usize = 32;

/// Why a path could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Opening or reading failed.
    Io(io::Error),
    /// A directory.
    Directory,
    /// Not a regular file: a FIFO, a device or a socket (the text says which).
    NotRegular(&'static str),
    /// Larger than the cap.
    TooLarge,
}

/// The whole content of a regular file at `path` of at most `cap` bytes, and its metadata.
///
/// The file is opened without blocking (so a FIFO without a writer does not
/// hang), its type is checked on the open handle (no race between a check
/// and the open), and at most `cap + 1` bytes are ever read, so a file that
/// grows while being read, or lies about its size, cannot exceed the cap.
pub(super) fn read(path: &Path, cap: u64) -> Result<(Vec<u8>, std::fs::Metadata), ReadError> {
    let file = open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if meta.is_dir() {
        return Err(ReadError::Directory);
    }
    if !meta.is_file() {
        return Err(ReadError::NotRegular(special_kind(&meta)));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge);
    }
    Ok((bytes, meta))
}

#[cfg(unix)]
fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "not a regular file"
}

/// A size in the units a person reads: `16 MiB`, `64 KiB`.
pub(super) fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// How deep `[` and `{` nest in a value as figment's parser reads it
/// (brackets inside double or single quotes do not count).
pub(super) fn bracket_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_depths() {
        assert_eq!(size(MAX_MANIFEST_BYTES), "16 MiB");
        assert_eq!(size(MAX_SECRET_BYTES), "64 KiB");
        assert_eq!(size(100), "100 bytes");
        assert_eq!(bracket_depth("plain"), 0);
        assert_eq!(bracket_depth("[\"a\", \"b\"]"), 1);
        assert_eq!(bracket_depth("[[1], {a = [2]}]"), 3);
        assert_eq!(bracket_depth("[\"[[[[\", '{{{']"), 1);
        assert_eq!(bracket_depth(&"[".repeat(5000)), 5000);
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").unwrap();
        assert_eq!(read(&small, 3).unwrap().0, b"abc");
        assert!(matches!(read(&small, 2), Err(ReadError::TooLarge)));
        assert!(matches!(read(dir.path(), 10), Err(ReadError::Directory)));
        #[cfg(unix)]
        assert!(matches!(
            read(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a device"))
        ));
        assert!(matches!(
            read(&dir.path().join("absent"), 10),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
