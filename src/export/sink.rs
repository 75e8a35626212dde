//! Where an export's bytes go, as a blocking `Write` for the encoders (which run on a
//! blocking thread): a local file put in place only when complete, stdout, or an object in
//! an object store.
//!
//! An object is uploaded with a single `PUT` when it is smaller than one part, otherwise as a
//! multipart upload whose parts ([`PART_BYTES`] each, at most [`PARTS_IN_FLIGHT`] at a time)
//! are sent while the encoder goes on: memory stays bounded by those parts whatever the
//! size. S3 makes an object visible only when its upload completes; a failed or abandoned
//! upload is aborted, which deletes the parts already sent.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tempfile::TempPath;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::Error;

/// Bytes per uploaded part (S3 wants at least 5 MiB for every part but the last).
pub const PART_BYTES: usize = 8 << 20;
/// Parts uploading at once.
pub const PARTS_IN_FLIGHT: usize = 4;

/// An export's output. Dropped without [`Sink::finish`], it leaves nothing: the temporary
/// file is deleted, an upload is aborted.
pub(crate) enum Sink {
    /// Standard output and the bytes written to it.
    Stdout(BufWriter<std::io::Stdout>, u64),
    /// A temporary file beside `path`, renamed onto it by `finish`.
    Local {
        out: BufWriter<File>,
        tmp: TempPath,
        path: PathBuf,
        replace: bool,
    },
    /// An object.
    Object(ObjectSink),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout(..) => f.write_str("Sink::Stdout"),
            Self::Local { path, .. } => write!(f, "Sink::Local({})", path.display()),
            Self::Object(o) => write!(f, "Sink::Object({})", o.path),
        }
    }
}

/// The folder a file's temporary file goes in: the file's own, so the final rename stays on
/// one file system.
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Sink {
    /// Standard output.
    pub(crate) fn stdout() -> Self {
        Self::Stdout(BufWriter::with_capacity(1 << 20, std::io::stdout()), 0)
    }

    /// A new file at `path`, written to a fresh temporary file in its folder (random name,
    /// `O_EXCL`, so no planted file or symlink is followed).
    ///
    /// errors: `Error::Io` if the temporary file cannot be created.
    pub(crate) fn local(path: &Path, replace: bool) -> Result<Self, Error> {
        let (file, tmp) = tempfile::Builder::new()
            .prefix(".tgpulse-export-")
            .suffix(".tmp")
            .tempfile_in(folder_of(path))
            .map_err(|e| Error::Io(path.display().to_string(), e))?
            .into_parts();
        Ok(Self::Local {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp,
            path: path.to_path_buf(),
            replace,
        })
    }

    /// The object `path` in `store`; must be created on a blocking thread of the runtime
    /// `rt` (it waits on the uploads with `rt.block_on`).
    pub(crate) fn object(rt: Handle, store: Arc<dyn ObjectStore>, path: ObjectPath) -> Self {
        Self::Object(ObjectSink {
            rt,
            store,
            path,
            buf: Vec::new(),
            upload: None,
            in_flight: VecDeque::new(),
            bytes: 0,
            failed: Arc::default(),
        })
    }

    /// Puts the output in place and returns its size in bytes: the file is synced and renamed
    /// onto its path (refusing an existing one unless `replace`), the object's upload is
    /// completed.
    ///
    /// errors: `Error::Exists` if a file appeared at the path meanwhile; `Error::Io` if
    /// writing, syncing or renaming fails; `Error::Store` if the upload fails (it is aborted).
    pub(crate) fn finish(self) -> Result<u64, Error> {
        match self {
            Self::Stdout(mut out, bytes) => {
                out.flush().map_err(|e| Error::Io("stdout".into(), e))?;
                Ok(bytes)
            }
            Self::Local {
                out,
                tmp,
                path,
                replace,
            } => {
                let io = |e| Error::Io(path.display().to_string(), e);
                let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                file.sync_all().map_err(io)?;
                let bytes = file.metadata().map_err(io)?.len();
                drop(file);
                if replace {
                    tmp.persist(&path).map_err(|e| io(e.error))?;
                } else {
                    tmp.persist_noclobber(&path).map_err(|e| {
                        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                            Error::Exists(path.clone())
                        } else {
                            io(e.error)
                        }
                    })?;
                }
                // The rename itself is durable once the folder is synced.
                if let Ok(dir) = File::open(folder_of(&path)) {
                    let _ = dir.sync_all();
                }
                Ok(bytes)
            }
            Self::Object(o) => o.finish(),
        }
    }
}

impl Sink {
    /// For an object: the flag set when a request to its store failed.
    pub(crate) fn store_failed(&self) -> Option<Arc<AtomicBool>> {
        match self {
            Self::Object(o) => Some(o.failed.clone()),
            _ => None,
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Stdout(out, bytes) => {
                let n = out.write(buf)?;
                *bytes += n as u64;
                Ok(n)
            }
            Self::Local { out, .. } => out.write(buf),
            Self::Object(o) => o.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Stdout(out, _) => out.flush(),
            Self::Local { out, .. } => out.flush(),
            // Parts are sent as they fill; the rest goes at `finish`.
            Self::Object(_) => Ok(()),
        }
    }
}

/// An object being uploaded.
pub(crate) struct ObjectSink {
    rt: Handle,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// Bytes not yet sent.
    buf: Vec<u8>,
    /// The multipart upload, once more than one part was written.
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
    bytes: u64,
    /// Set when a request to the store failed: the encoder above may report the failure as
    /// its own (arrow-csv turns an io error into text), this says where it came from.
    failed: Arc<AtomicBool>,
}

fn store_io(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl ObjectSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.bytes += data.len() as u64;
        while self.buf.len() >= PART_BYTES {
            let rest = self.buf.split_off(PART_BYTES);
            let part = std::mem::replace(&mut self.buf, rest);
            if let Err(e) = self.send(part) {
                self.failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(data.len())
    }

    /// Starts the upload of one part, waiting first while [`PARTS_IN_FLIGHT`] are on their way.
    fn send(&mut self, part: Vec<u8>) -> std::io::Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            let oldest = self.in_flight.pop_front().expect("not empty");
            self.rt
                .block_on(oldest)
                .map_err(std::io::Error::other)?
                .map_err(store_io)?;
        }
        if self.upload.is_none() {
            let upload = self
                .rt
                .block_on(self.store.put_multipart(&self.path))
                .map_err(store_io)?;
            self.upload = Some(upload);
        }
        let upload = self.upload.as_mut().expect("started above");
        let fut = upload.put_part(PutPayload::from(part));
        self.in_flight.push_back(self.rt.spawn(fut));
        Ok(())
    }

    fn finish(mut self) -> Result<u64, Error> {
        let err = |e: object_store::Error| Error::Store(Box::new(e));
        if self.upload.is_none() {
            // Smaller than one part: a single PUT, atomic on every store.
            let body = std::mem::take(&mut self.buf);
            self.rt
                .block_on(self.store.put(&self.path, PutPayload::from(body)))
                .map_err(err)?;
            return Ok(self.bytes);
        }
        let last = std::mem::take(&mut self.buf);
        if !last.is_empty() {
            self.send(last)
                .map_err(|e| Error::Io(self.path.to_string(), e))?;
        }
        while let Some(part) = self.in_flight.pop_front() {
            let sent = self.rt.block_on(part);
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(err(e)),
                Err(e) => return Err(Error::Io(self.path.to_string(), std::io::Error::other(e))),
            }
        }
        let mut upload = self.upload.take().expect("multipart");
        match self.rt.block_on(upload.complete()) {
            Ok(_) => Ok(self.bytes),
            Err(e) => {
                self.upload = Some(upload);
                Err(err(e))
            }
        }
    }
}

impl Drop for ObjectSink {
    /// An upload that did not complete is aborted: the parts in flight are cancelled and the
    /// store deletes the parts it holds. The abort is waited for, so a sink lives and dies
    /// on a blocking thread (where exports write), never on the runtime's own threads.
    fn drop(&mut self) {
        let parts: Vec<_> = self.in_flight.drain(..).collect();
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        let path = self.path.clone();
        let abort = self.rt.spawn(async move {
            // A part already on the wire could land after the abort and be kept: cancel the
            // parts and wait until each has ended before aborting the upload.
            for part in parts {
                part.abort();
                let _ = part.await;
            }
            // Aborting is idempotent; a connection the failure left broken gets two more tries.
            for attempt in 1..=3 {
                match upload.abort().await {
                    Ok(()) => {
                        tracing::info!(%path, "unfinished upload aborted");
                        return;
                    }
                    Err(e) if attempt == 3 => {
                        tracing::warn!(%path, error = %e, "could not abort an unfinished upload; the store keeps its parts until its lifecycle rule removes them");
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        });
        let _ = self.rt.block_on(abort);
    }
}
