//! Live collection on plain PostgreSQL: the daily relations are refreshed by a task of their
//! own, on their own connection, at most every `every`, while the writer goes on committing
//! batches. The invalidation log is written in each batch's transaction, so a refresh that
//! fails or lags loses nothing; the next one catches up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::db::Db;

/// Pause after a failed refresh (database away).
const RETRY: Duration = Duration::from_secs(5);
/// Attempts of the last refresh at shutdown.
const FINAL_TRIES: u32 = 3;

/// Handle of the refresher task.
#[derive(Debug)]
pub(super) struct Refresher {
    dirty: Arc<AtomicBool>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

async fn refresh(db: &Db) -> Result<(), String> {
    let client = db.pool.get().await.map_err(|e| e.to_string())?;
    super::sink::refresh_daily(&client)
        .await
        .map_err(|e| crate::error_chain(&e))
}

impl Refresher {
    pub(super) fn spawn(db: Db, every: Duration) -> Self {
        let dirty = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, w, s) = (dirty.clone(), wake.clone(), stop.clone());
        let handle = tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                if !s.load(Ordering::Acquire) {
                    w.notified().await;
                }
                if s.load(Ordering::Acquire) {
                    break;
                }
                let since = last.elapsed();
                if since < every {
                    tokio::time::sleep(every - since).await;
                }
                if !d.swap(false, Ordering::AcqRel) {
                    continue;
                }
                last = Instant::now();
                if let Err(e) = refresh(&db).await {
                    d.store(true, Ordering::Release);
                    tracing::debug!(error = %e, "daily refresh postponed");
                    tokio::time::sleep(RETRY).await;
                    w.notify_one();
                }
            }
            // Shutdown: fold in whatever is left.
            for _ in 0..FINAL_TRIES {
                if !d.swap(false, Ordering::AcqRel) {
                    return;
                }
                match refresh(&db).await {
                    Ok(()) => return,
                    Err(e) => {
                        d.store(true, Ordering::Release);
                        tracing::warn!(error = %e, "daily refresh failed at shutdown; the next refresh catches up");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        });
        Self {
            dirty,
            wake,
            stop,
            handle,
        }
    }

    /// A batch committed: schedule a refresh.
    pub(super) fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Runs the last refresh and waits for the task until `deadline`; past it the task is
    /// stopped (the invalidation log keeps what it had to do for the next run).
    pub(super) async fn finish(mut self, deadline: tokio::time::Instant) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
        if tokio::time::timeout_at(deadline, &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
            tracing::warn!("daily refresh skipped at shutdown; the next run catches up");
        }
    }
}
