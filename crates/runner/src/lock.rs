//! One run at a time per (organization, sandbox) on a machine.
//!
//! Two applies of one manifest at once (a nightly run and a manual one) would
//! both see a connection missing and both create it. Before the first write,
//! `apply` takes an advisory lock per sandbox: a file under the user's
//! runtime directory (`$XDG_RUNTIME_DIR/atsprov`), else the cache directory
//! (`$XDG_CACHE_HOME/atsprov`, `~/.cache/atsprov`), else the temporary
//! directory, named by a hash of the organization and the sandbox, locked
//! with the operating system's file lock (`flock`). The OS releases it when
//! the process ends, however it ends, so a crash never leaves a stale lock.
//!
//! What it does not cover: two machines (each has its own lock files), or two
//! users with different runtime directories. For those, schedule one runner
//! (docs/operations.md); the next run's plan still shows any duplicate, and
//! its `dedupe` rows remove the ones atsprov made.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest as _, Sha256};

/// The variable that names the lock directory explicitly (tests, shared hosts).
pub const LOCK_DIR_ENV: &str = "ATSPROV_LOCK_DIR";

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(100);

/// The most a holder's note may be read: it is a short line we wrote.
const NOTE_CAP: u64 = 1024;

/// How many times an empty note is read again, and the pause between.
const NOTE_TRIES: u32 = 10;
const NOTE_PAUSE: Duration = Duration::from_millis(20);

/// Locks held for a run; dropping them releases them.
#[derive(Debug)]
pub struct RunLock {
    _files: Vec<File>,
}

/// Why the locks could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds a lock and did not let go in time.
    #[error(
        "another atsprov run is working on sandbox `{sandbox}` of this organization ({holder}); waited {:.1} s (`--lock-timeout`). Let it finish (or stop it), then run again", waited.as_secs_f64()
    )]
    Busy {
        /// The sandbox.
        sandbox: String,
        /// What the holder wrote about itself: pid, start time, manifest.
        holder: String,
        /// How long this run waited.
        waited: Duration,
    },
    /// The lock file could not be opened or locked.
    #[error("could not use the lock file `{}`: {source}; set {LOCK_DIR_ENV} to a folder this user can write", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The directory lock files go in, from the environment.
pub fn lock_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(LOCK_DIR_ENV) {
        return dir;
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        return dir.join("atsprov");
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("atsprov");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("atsprov");
    }
    std::env::temp_dir().join("atsprov")
}

/// The lock file of one (organization, sandbox).
pub fn lock_path(dir: &Path, org_id: &str, sandbox: &str) -> PathBuf {
    let mut hash = Sha256::new();
    for part in ["atsprov.lock/v1", org_id, sandbox] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut name = String::with_capacity(40);
    for b in &digest[..12] {
        name.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        name.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    name.push_str(".lock");
    dir.join(name)
}

/// Takes the lock of every sandbox (in sorted order, so two runs never wait
/// on each other crosswise), waiting up to `wait` for a busy one. `note`
/// says who holds it (written into the file for the next run to show).
pub fn acquire(
    dir: &Path,
    org_id: &str,
    sandboxes: &[String],
    wait: Duration,
    note: &str,
) -> Result<RunLock, LockError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LockError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut sorted: Vec<&String> = sandboxes.iter().collect();
    sorted.sort();
    sorted.dedup();
    let started = Instant::now();
    let mut files = Vec::with_capacity(sorted.len());
    for sandbox in sorted {
        let path = lock_path(dir, org_id, sandbox);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(POLL.min(wait.saturating_sub(started.elapsed())));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Busy {
                        sandbox: sandbox.clone(),
                        holder: holder(&mut file),
                        waited: started.elapsed(),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
            }
        }
        // Ours now: say who we are, for a run that finds it busy.
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .and_then(|()| file.flush());
        if let Err(source) = written {
            return Err(LockError::Io { path, source });
        }
        files.push(file);
    }
    Ok(RunLock { _files: files })
}

/// The note a holder wrote, one line, bounded, with control characters
/// shown. A holder writes it just after it takes the lock: an empty file is
/// read again a few times, briefly, before giving up on it.
fn holder(file: &mut File) -> String {
    for _ in 0..NOTE_TRIES {
        let mut text = String::new();
        let read = file.seek(SeekFrom::Start(0)).and_then(|_| {
            std::io::Read::by_ref(file)
                .take(NOTE_CAP)
                .read_to_string(&mut text)
        });
        if read.is_ok() && !text.trim().is_empty() {
            return atsprov_model::escape::terminal(text.trim()).into_owned();
        }
        std::thread::sleep(NOTE_PAUSE);
    }
    "a run that has not said who it is".to_owned()
}

/// The note this process leaves in its lock files.
pub fn note(manifest: &Path) -> String {
    format!(
        "pid {} since {}, manifest {}",
        std::process::id(),
        atsprov_model::report::timestamp(SystemTime::now()),
        manifest.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandboxes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_lock_folder_that_cannot_be_made_names_the_variable_that_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = acquire(&file, "ORG", &sandboxes(&["prod"]), Duration::ZERO, "x").unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        assert!(err.to_string().contains(LOCK_DIR_ENV), "{err}");
    }

    #[test]
    fn a_second_run_on_a_sandbox_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(
            dir.path(),
            "ORG",
            &sandboxes(&["prod", "dev"]),
            Duration::ZERO,
            "pid 1 first",
        )
        .unwrap();
        let err = acquire(
            dir.path(),
            "ORG",
            &sandboxes(&["stage", "prod"]),
            Duration::from_millis(50),
            "pid 2",
        )
        .unwrap_err();
        match &err {
            LockError::Busy {
                sandbox, holder, ..
            } => {
                assert_eq!(sandbox, "prod");
                assert_eq!(holder, "pid 1 first");
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains("another atsprov run"), "{text}");
        // The wait in seconds, as a person reads it, and the flag that sets it.
        let waited = text.split("waited ").nth(1).unwrap_or_default();
        assert!(
            waited.starts_with("0.") && waited.contains(" s (`--lock-timeout`)"),
            "{text}"
        );
        // Other sandboxes and other organizations are free.
        acquire(
            dir.path(),
            "ORG",
            &sandboxes(&["stage"]),
            Duration::ZERO,
            "x",
        )
        .unwrap();
        acquire(
            dir.path(),
            "OTHER",
            &sandboxes(&["prod"]),
            Duration::ZERO,
            "x",
        )
        .unwrap();
        drop(first);
        acquire(
            dir.path(),
            "ORG",
            &sandboxes(&["prod"]),
            Duration::ZERO,
            "pid 3",
        )
        .unwrap();
    }

    #[test]
    fn lock_files_are_named_by_org_and_sandbox() {
        let dir = Path::new("/locks");
        assert_eq!(lock_path(dir, "A", "prod"), lock_path(dir, "A", "prod"));
        assert_ne!(lock_path(dir, "A", "prod"), lock_path(dir, "A", "dev"));
        assert_ne!(lock_path(dir, "A", "prod"), lock_path(dir, "B", "prod"));
        // No separator trick joins two pairs.
        assert_ne!(lock_path(dir, "Ap", "rod"), lock_path(dir, "A", "prod"));
    }
}
