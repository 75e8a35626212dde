//! The AWS shared credentials and config files, as the AWS CLI and SDKs read them:
//! `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) holds `[name]` sections with
//! `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`;
//! `~/.aws/config` (`AWS_CONFIG_FILE`) holds `[default]` or `[profile name]` sections with
//! `region` and `endpoint_url`. The profile is `AWS_PROFILE`, else `default`. Missing files
//! are not an error; a file that exists but does not parse is.

use std::path::PathBuf;

use ini::Ini;

/// Keys of one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<String>,
}

/// What the files say for the selected profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Keys, when both the key id and the secret are present.
    pub credentials: Option<Credentials>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url` (an S3-compatible server).
    pub endpoint_url: Option<String>,
}

/// A file that exists but cannot be read as INI.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the AWS file {path}")]
pub struct Error {
    path: PathBuf,
    #[source]
    source: ini::Error,
}

impl Profile {
    /// Reads the selected profile from the files the environment points at.
    ///
    /// errors: `Error` naming a file that exists but does not parse.
    pub fn load() -> Result<Self, Error> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let home = env("HOME").map(PathBuf::from);
        let file = |var: &str, name: &str| {
            env(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let name = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        Self::from_files(
            file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            file("AWS_CONFIG_FILE", "config"),
            &name,
        )
    }

    /// Reads profile `name` from the two files (either may be absent).
    ///
    /// errors: as [`Profile::load`].
    pub fn from_files(
        credentials: Option<PathBuf>,
        config: Option<PathBuf>,
        name: &str,
    ) -> Result<Self, Error> {
        let read = |p: Option<PathBuf>| -> Result<Option<Ini>, Error> {
            match p {
                Some(path) if path.is_file() => Ini::load_from_file(&path)
                    .map(Some)
                    .map_err(|source| Error { path, source }),
                _ => Ok(None),
            }
        };
        let mut out = Self::default();
        if let Some(ini) = read(credentials)?
            && let Some(s) = ini.section(Some(name))
            && let (Some(id), Some(secret)) =
                (s.get("aws_access_key_id"), s.get("aws_secret_access_key"))
        {
            out.credentials = Some(Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: s.get("aws_session_token").map(str::to_owned),
            });
        }
        if let Some(ini) = read(config)? {
            let section = if name == "default" {
                "default".to_owned()
            } else {
                format!("profile {name}")
            };
            if let Some(s) = ini.section(Some(section)) {
                out.region = s.get("region").map(str::to_owned);
                out.endpoint_url = s.get("endpoint_url").map(str::to_owned);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_profile_is_read_from_both_files_and_missing_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n\
             [lake]\naws_access_key_id = C\naws_secret_access_key = D\naws_session_token = T\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n\n[profile lake]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:9000\n",
        )
        .unwrap();
        let p = Profile::from_files(Some(creds.clone()), Some(config.clone()), "lake").unwrap();
        assert_eq!(
            p.credentials,
            Some(Credentials {
                access_key_id: "C".into(),
                secret_access_key: "D".into(),
                session_token: Some("T".into()),
            })
        );
        assert_eq!(p.region.as_deref(), Some("us-east-2"));
        assert_eq!(p.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let d = Profile::from_files(Some(creds), Some(config), "default").unwrap();
        assert_eq!(d.credentials.unwrap().access_key_id, "A");
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        let none = Profile::from_files(Some(dir.path().join("nope")), None, "default").unwrap();
        assert_eq!(none, Profile::default());
    }
}
