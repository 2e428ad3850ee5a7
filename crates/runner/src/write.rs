//! Writing reports and plans to files, atomically: a temp file beside the
//! target, then a rename, so a crash never leaves half a report.

use std::io::Write as _;
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

/// Writes `text` to `path` through a temp file in the same directory and a rename.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// Writes a report in a format.
pub fn write_report(path: &Path, format: ReportFormat, report: &Report) -> Result<(), WriteError> {
    let text = match format {
        ReportFormat::Json => report.to_json(),
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
