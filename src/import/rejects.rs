//! Reject files: written to a fresh temporary file beside the target while the import runs,
//! and put in place, never over an existing file, only when the import succeeds.

use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::{Error, RowError};

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub(super) fn clip(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("… [{dropped} more bytes]"));
}

/// Appends a rejected row, creating the temporary file on the first one.
///
/// errors: the temporary file cannot be created or written.
pub(super) fn write_reject(
    w: &mut Option<csv::Writer<NamedTempFile>>,
    path: &Path,
    columns: &[String],
    e: &RowError,
) -> Result<(), csv::Error> {
    if w.is_none() {
        // A fresh file beside the target (created exclusively, so never through a
        // symlink); it becomes the reject file only if the import succeeds.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".tgpulse-rejects-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        let mut new = csv::WriterBuilder::new().flexible(true).from_writer(tmp);
        let mut header = vec![
            "position".to_owned(),
            "column".to_owned(),
            "reason".to_owned(),
        ];
        header.extend(columns.iter().cloned());
        new.write_record(&header)?;
        *w = Some(new);
    }
    let w = w.as_mut().expect("just set");
    let mut rec = vec![e.pos.to_string(), e.column.clone(), e.reason.clone()];
    rec.extend(e.raw.iter().cloned());
    w.write_record(&rec)
}

/// Puts the finished reject file in place: at `path`, or, if something (even a symlink)
/// is there already, at the first free `<stem>.N.<ext>` beside it. Never overwrites.
///
/// errors: `Error::RejectFile` if it cannot be flushed, synced or linked into place (the
/// temporary file is removed then).
pub(super) fn keep_rejects(w: csv::Writer<NamedTempFile>, path: &Path) -> Result<PathBuf, Error> {
    let fail = |source: std::io::Error| Error::RejectFile {
        path: path.to_owned(),
        source: source.into(),
    };
    let tmp = w.into_inner().map_err(|e| fail(e.into_error()))?;
    tmp.as_file().sync_all().map_err(fail)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rejects".into());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut tmp = tmp;
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            path.to_owned()
        } else {
            path.with_file_name(format!("{stem}.{n}{ext}"))
        };
        match tmp.persist_noclobber(&candidate) {
            Ok(_) => return Ok(candidate),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(fail(e.error)),
        }
    }
    Err(fail(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "the reject file and 999 numbered alternatives exist already",
    )))
}
