//! Where exported datasets live and where `tgpulse sql` finds files: a local path (plain or
//! `file://`) or an S3 / S3-compatible bucket (`s3://bucket/prefix`), through `object_store`,
//! the storage crate DataFusion and arrow-rs use.
//!
//! S3 settings come from the standard AWS environment variables that `object_store` reads
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`), then from the shared credentials and config
//! files for what the environment left unset ([`profile`], `AWS_PROFILE`, default `default`).
//! [`S3Options::endpoint`] (`--s3-endpoint`) overrides the endpoint; an `http://` endpoint
//! (a local MinIO or moto) is allowed as such.

pub mod profile;
pub mod tables;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

/// Errors of locating or opening a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location is neither a path nor a supported URL.
    #[error("unsupported location {0}: expected a path, file:///path or s3://bucket/prefix")]
    Unsupported(String),
    /// The S3 client could not be configured (a bad URL, endpoint or credentials file).
    #[error("cannot use {location}")]
    Configure {
        /// The location asked for.
        location: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How to reach S3: what the environment and profile don't say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible server (`--s3-endpoint`), overriding
    /// `AWS_ENDPOINT_URL`; `http://` is allowed for it.
    pub endpoint: Option<String>,
    /// Retries of a failed request (default 10, `object_store`'s own); 0 fails at the first
    /// error.
    pub max_retries: Option<usize>,
}

/// A resolved location.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local path.
    Local(PathBuf),
    /// A prefix in an object store.
    Object(ObjectLocation),
}

/// A prefix in an object store, with the store's client.
#[derive(Debug, Clone)]
pub struct ObjectLocation {
    /// The store (one bucket).
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket`: the URL the store is registered under in DataFusion.
    pub base: Url,
    /// The key or key prefix inside the bucket (no leading `/`).
    pub path: ObjectPath,
}

impl ObjectLocation {
    /// `s3://bucket/key` of `path`.
    pub fn url_of(&self, path: &ObjectPath) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), {
            let p = path.as_ref();
            if p.is_empty() {
                String::new()
            } else {
                format!("/{p}")
            }
        })
    }

    /// This location's own URL.
    pub fn url(&self) -> String {
        self.url_of(&self.path)
    }
}

impl Location {
    /// Resolves `s`: `s3://bucket/prefix`, `file:///abs/path`, or a plain path.
    ///
    /// errors: `Error::Unsupported` for another URL scheme; `Error::Configure` if the S3
    /// client cannot be built (an invalid endpoint, an unreadable profile file).
    pub fn parse(s: &str, opts: &S3Options) -> Result<Self, Error> {
        let Some((scheme, _)) = s.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(s)));
        };
        let url = Url::parse(s).map_err(|_| Error::Unsupported(s.to_owned()))?;
        match scheme {
            "file" => url
                .to_file_path()
                .map(Self::Local)
                .map_err(|()| Error::Unsupported(s.to_owned())),
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| Error::Unsupported(s.to_owned()))?;
                let base = Url::parse(&format!("s3://{bucket}"))
                    .map_err(|_| Error::Unsupported(s.to_owned()))?;
                let store = s3_store(bucket, opts).map_err(|source| Error::Configure {
                    location: s.to_owned(),
                    source,
                })?;
                // The URL's path is percent-encoded: decode it once, not encode it again.
                let path =
                    ObjectPath::from_url_path(url.path().trim_matches('/')).map_err(|e| {
                        Error::Configure {
                            location: s.to_owned(),
                            source: Box::new(e),
                        }
                    })?;
                Ok(Self::Object(ObjectLocation { store, base, path }))
            }
            _ => Err(Error::Unsupported(s.to_owned())),
        }
    }
}

/// An S3 client for `bucket`: the environment first, then the profile files, then `opts`.
fn s3_store(
    bucket: &str,
    opts: &S3Options,
) -> Result<Arc<dyn ObjectStore>, Box<dyn std::error::Error + Send + Sync>> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let unset = |b: &AmazonS3Builder, k: AmazonS3ConfigKey| b.get_config_value(&k).is_none();
    let prof = profile::Profile::load()?;
    if unset(&b, AmazonS3ConfigKey::AccessKeyId)
        && let Some(c) = &prof.credentials
    {
        b = b
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key);
        if let Some(t) = &c.session_token {
            b = b.with_token(t);
        }
    }
    if unset(&b, AmazonS3ConfigKey::Region)
        && unset(&b, AmazonS3ConfigKey::DefaultRegion)
        && let Some(r) = &prof.region
    {
        b = b.with_region(r);
    }
    if unset(&b, AmazonS3ConfigKey::Endpoint)
        && let Some(e) = &prof.endpoint_url
    {
        b = b.with_endpoint(e);
    }
    if let Some(e) = &opts.endpoint {
        b = b.with_endpoint(e);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_some_and(|e| e.starts_with("http://"))
    {
        b = b.with_allow_http(true);
    }
    let mut retry = RetryConfig::default();
    if let Some(n) = opts.max_retries {
        retry.max_retries = n;
        if n == 0 {
            retry.retry_timeout = Duration::ZERO;
        }
    }
    Ok(Arc::new(b.with_retry(retry).build()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn paths_and_file_urls_are_local_and_s3_urls_name_bucket_and_prefix() {
        let o = S3Options {
            endpoint: Some("http://127.0.0.1:9".into()),
            max_retries: Some(0),
        };
        assert!(
            matches!(Location::parse("out/x.parquet", &o), Ok(Location::Local(p)) if p == Path::new("out/x.parquet"))
        );
        assert!(
            matches!(Location::parse("file:///tmp/x", &o), Ok(Location::Local(p)) if p == Path::new("/tmp/x"))
        );
        let Ok(Location::Object(l)) = Location::parse("s3://lake/tgpulse/posts/", &o) else {
            panic!("an s3 URL is an object location")
        };
        assert_eq!(l.base.as_str(), "s3://lake");
        assert_eq!(l.path.as_ref(), "tgpulse/posts");
        assert_eq!(l.url(), "s3://lake/tgpulse/posts");
        let Ok(Location::Object(l)) = Location::parse("s3://lake/my%20dir/Канал", &o) else {
            panic!("an s3 URL is an object location")
        };
        assert_eq!(l.path.as_ref(), "my dir/Канал");
        assert!(matches!(
            Location::parse("gs://b/x", &o),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            Location::parse("s3:///x", &o),
            Err(Error::Unsupported(_))
        ));
    }
}
