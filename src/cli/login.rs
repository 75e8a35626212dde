//! `tgpulse login` (feature `mtproto`): signs the MTProto account in.

use anyhow::{Result, bail};

use super::collect::SourcesArgs;
use crate::collect::SourcesConfig;

/// `tgpulse login`: signs the MTProto account in and writes the session file (mode 0600).
pub(super) async fn login_cmd(a: &LoginArgs) -> Result<()> {
    use std::io::{BufRead, Write};
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let c = cfg.sources.get("mtproto").cloned().unwrap_or_default();
    let (Some(api_id), Some(api_hash)) = (c.api_id, c.api_hash.as_ref()) else {
        bail!("the [mtproto] table needs api_id and api_hash (from my.telegram.org)");
    };
    let session = c.session.unwrap_or_else(|| "tgpulse.session".into());
    let ask = |prompt: &str| {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim().to_owned()
    };
    let phone = match &a.phone {
        Some(p) => p.clone(),
        None => ask("phone number (international format): "),
    };
    crate::collect::mtproto::live::login(
        &session,
        api_id,
        api_hash,
        &phone,
        || ask("login code: "),
        |hint| {
            let prompt = match hint {
                Some(h) => format!("2FA password (hint: {h}): "),
                None => "2FA password: ".to_owned(),
            };
            rpassword::prompt_password(prompt).unwrap_or_default()
        },
    )
    .await?;
    println!("logged in; session saved (mode 0600)");
    Ok(())
}

/// Arguments of `tgpulse login`.
#[derive(Debug, clap::Args)]
pub(super) struct LoginArgs {
    #[command(flatten)]
    sources: SourcesArgs,
    /// Phone number of the account (asked for when absent).
    #[arg(long)]
    phone: Option<String>,
}
