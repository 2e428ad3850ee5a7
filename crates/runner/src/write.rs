//! Writing reports and plans to files, atomically: an exclusive temp file
//! with an unpredictable name beside the target, then a rename, so a crash
//! never leaves half a report; special files (FIFOs, devices) are written in place.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use atsprov_model::report::Report;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// `atsprov.report/v1`.
    Json,
    /// For a CI job summary.
    Markdown,
    /// JUnit XML, one test case per item.
    Junit,
}

impl ReportFormat {
    /// The format a file name implies: `.json`, `.md`/`.markdown`, `.xml`.
    pub fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "md" | "markdown" => Some(Self::Markdown),
            "xml" | "junit" => Some(Self::Junit),
            _ => None,
        }
    }
}

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write `{path}`")]
pub struct WriteError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Writes `text` to `path` so that a crash never leaves half a file.
///
/// A regular file (or none) is replaced atomically: the text goes to a temp
/// file with an unpredictable name, created exclusively in the target's
/// folder (a link planted there is never followed), then renamed over the
/// target. A target that is a symlink to a regular file has the file it
/// points to replaced, and stays a link. A target that exists and is not a
/// regular file (a FIFO, a device, `/dev/stdout`) is written in place, never
/// replaced.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    write_atomically_with(path, &|out| out.write_all(text.as_bytes()))
}

/// What a writer of a file's content does: writes it all into `out`.
type Content<'a> = &'a dyn Fn(&mut dyn Write) -> std::io::Result<()>;

/// [`write_atomically`] of content written straight into the file (through a
/// buffer), so a 100,000-item report is never one string in memory.
fn write_atomically_with(path: &Path, content: Content<'_>) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            write_in_place(path, content).map_err(fail)
        }
        Ok(meta) if meta.is_file() && is_symlink(path) => {
            let real = std::fs::canonicalize(path).map_err(fail)?;
            replace(&real, content).map_err(fail)
        }
        _ => replace(path, content).map_err(fail),
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Writes into an existing special file (FIFO, device) without replacing it.
fn write_in_place(path: &Path, content: Content<'_>) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut out = BufWriter::new(file);
    content(&mut out)?;
    out.flush()
}

/// A temp file beside `path`, then a rename over it.
///
/// The file ends with the permissions a user expects of a file a tool
/// writes: those of the file it replaces, or for a new one those any new
/// file gets (`0666` less the umask), not the temp file's owner-only `0600`.
/// What is written here (reports, plans, listings) holds no secret.
fn replace(path: &Path, content: Content<'_>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".atsprov-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The kernel takes the umask off, as it does for any new file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(&dir).map_err(without_temp_path)?;
    if let Ok(old) = std::fs::metadata(path) {
        let mut permissions = old.permissions();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Read and write bits only: no set-id or sticky bit carried over.
            permissions.set_mode(permissions.mode() & 0o777);
        }
        file.as_file().set_permissions(permissions)?;
    }
    {
        let mut out = BufWriter::new(file.as_file_mut());
        content(&mut out)?;
        out.flush()?;
    }
    file.as_file().sync_all()?;
    // On failure the temp file is removed when `persist`'s error is dropped.
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// tempfile's error without the temp file's path it appends (`… at path
/// "…/.atsprov-XXXX.tmp"`): a name the user never chose and cannot act on.
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(at) => std::io::Error::new(e.kind(), &text[..at]),
        None => e,
    }
}

/// Writes a report in a format.
pub fn write_report(path: &Path, format: ReportFormat, report: &Report) -> Result<(), WriteError> {
    let text = match format {
        ReportFormat::Json => return write_atomically_with(path, &|out| report.write_json(out)),
        ReportFormat::Markdown => report.to_markdown(),
        ReportFormat::Junit => report.to_junit(),
    };
    write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomically(&path, "one").unwrap();
        write_atomically(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomically(&dir.path().join("missing/r.json"), "x").unwrap_err();
        assert!(err.to_string().contains("missing/r.json"), "{err}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(!cause.contains(".atsprov-"), "no temp file name: {cause}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_the_old_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("r.json");
        let old_name = dir
            .path()
            .join(format!(".r.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_name).unwrap();
        write_atomically(&path, "report").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "report");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_target_keeps_its_link_and_the_file_it_points_to_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, "new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_gets_the_usual_permissions_and_a_replaced_one_keeps_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // What any new file gets here: 0666 less this process's umask.
        let usual = dir.path().join("usual");
        std::fs::File::create(&usual).unwrap();
        let fresh = dir.path().join("fresh.json");
        write_atomically(&fresh, "report").unwrap();
        assert_eq!(mode(&fresh), mode(&usual), "not the temp file's 0600");

        let shared = dir.path().join("shared.json");
        std::fs::write(&shared, "old").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&shared, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "new");
        assert_eq!(mode(&shared), 0o640);
    }

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(
            ReportFormat::from_extension(Path::new("a.JSON")),
            Some(ReportFormat::Json)
        );
        assert_eq!(
            ReportFormat::from_extension(Path::new("a.md")),
            Some(ReportFormat::Markdown)
        );
        assert_eq!(
            ReportFormat::from_extension(Path::new("a.xml")),
            Some(ReportFormat::Junit)
        );
        assert_eq!(ReportFormat::from_extension(Path::new("a.txt")), None);
    }
}
