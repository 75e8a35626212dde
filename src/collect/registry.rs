//! Sources by name.

use std::sync::Arc;

use super::botapi::BotApi;
use super::vendor::{Flavor, Vendor};
use super::{Collector, Error, Limits, Polled, Replay, SourceConfig};
use crate::config::Secret;

/// Every registered source name.
pub const SOURCE_NAMES: &[&str] = &["botapi", "mtproto", "tgstat", "telemetr", "replay"];

fn token(name: &str, cfg: &SourceConfig) -> Result<Secret, Error> {
    cfg.token.clone().ok_or_else(|| {
        Error::Config(format!(
            "source {name} needs a token: set `token` in its table or TGPULSE_{}_TOKEN",
            name.to_ascii_uppercase()
        ))
    })
}

/// Builds the source `name` from its settings.
///
/// errors: `Error::UnknownSource`; `Error::Config` for missing credentials or a replay
/// without a file; for `mtproto`, a build without the `mtproto` feature or a session that
/// is not logged in.
pub async fn build(name: &str, cfg: &SourceConfig) -> Result<Arc<dyn Collector>, Error> {
    let limits = || Arc::new(Limits::new(name, &cfg.limits));
    let url = cfg.api_url.as_deref();
    Ok(match name {
        "botapi" => Arc::new(Polled::new(
            BotApi::new(url, token(name, cfg)?, limits()),
            cfg.schedule.clone(),
        )),
        "tgstat" | "telemetr" => {
            let flavor = if name == "tgstat" {
                Flavor::Tgstat
            } else {
                Flavor::Telemetr
            };
            Arc::new(Polled::new(
                Vendor::new(
                    flavor,
                    url,
                    token(name, cfg)?,
                    limits(),
                    cfg.quota_reserve,
                    cfg.details_for(),
                ),
                cfg.schedule.clone(),
            ))
        }
        "replay" => {
            let file = cfg.file.clone().ok_or_else(|| {
                Error::Config("source replay needs a file (`file` or --file)".into())
            })?;
            Arc::new(Replay::new(file, cfg.replay_speed()?))
        }
        "mtproto" => mtproto(cfg, limits()).await?,
        other => return Err(Error::UnknownSource(other.to_owned())),
    })
}

#[cfg(feature = "mtproto")]
async fn mtproto(cfg: &SourceConfig, limits: Arc<Limits>) -> Result<Arc<dyn Collector>, Error> {
    let (Some(api_id), Some(api_hash)) = (cfg.api_id, cfg.api_hash.as_ref()) else {
        return Err(Error::Config(
            "source mtproto needs api_id and api_hash (from my.telegram.org)".into(),
        ));
    };
    let session = cfg
        .session
        .clone()
        .unwrap_or_else(|| "tgpulse.session".into());
    let client = super::mtproto::live::connect(&session, api_id, api_hash, limits).await?;
    Ok(Arc::new(Polled::new(client, cfg.schedule.clone())))
}

#[cfg(not(feature = "mtproto"))]
async fn mtproto(_cfg: &SourceConfig, _limits: Arc<Limits>) -> Result<Arc<dyn Collector>, Error> {
    Err(Error::Config(
        "this tgpulse was built without MTProto; rebuild with `cargo build --features mtproto`"
            .into(),
    ))
}
