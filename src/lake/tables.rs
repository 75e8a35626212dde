//! Files as SQL tables for `tgpulse sql`: a Parquet, CSV or JSON Lines file, or a folder or
//! S3 prefix of them (Hive partitions such as `month=2021-07/` become columns), registered in
//! a DataFusion session beside the PostgreSQL relations; and the read-only gate every
//! analyst query passes.

use std::path::Path;
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::{Location, S3Options};

/// Errors of registering a file table or running an analyst query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--table` was not `name=PATH`, or the name is not a plain SQL identifier.
    #[error(
        "invalid --table {0:?}: expected name=PATH with a lower-case name of letters, digits and '_'"
    )]
    Spec(String),
    /// The name is taken by a tgpulse relation or an earlier `--table`.
    #[error("a table named {0} exists already")]
    Taken(String),
    /// No Parquet, CSV or JSON file was found at the path.
    #[error("no .parquet, .csv, .json or .jsonl file at {0}")]
    NoFiles(String),
    /// The location could not be resolved.
    #[error(transparent)]
    Location(#[from] super::Error),
    /// Listing the folder or prefix failed.
    #[error("cannot list {0}")]
    List(String, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The statement is not a query.
    #[error(
        "tgpulse sql is read-only: only queries (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE) run; {0}"
    )]
    NotAQuery(String),
    /// DataFusion refused or failed the table or the query.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// The file formats a table can be made of, by extension.
const EXTENSIONS: &[&str] = &["parquet", "csv", "jsonl", "ndjson", "json"];

fn extension_of(name: &str) -> Option<&'static str> {
    let ext = Path::new(name).extension()?.to_str()?;
    EXTENSIONS
        .iter()
        .copied()
        .find(|e| e.eq_ignore_ascii_case(ext))
}

/// Splits `name=PATH`.
///
/// errors: `Error::Spec` if there is no `=` or the name is not `[a-z_][a-z0-9_]*`.
pub fn parse_spec(spec: &str) -> Result<(String, String), Error> {
    let bad = || Error::Spec(spec.to_owned());
    let (name, path) = spec.split_once('=').ok_or_else(bad)?;
    let ok = !name.is_empty()
        && !path.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok((name.to_owned(), path.to_owned()))
    } else {
        Err(bad())
    }
}

/// The first data file's extension under a local folder (depth-first, skipping hidden and
/// `_`-prefixed entries as Hive readers do).
fn local_extension(dir: &Path) -> Option<&'static str> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            if let Some(x) = local_extension(&p) {
                return Some(x);
            }
        } else if let Some(x) = extension_of(&name) {
            return Some(x);
        }
    }
    None
}

/// Registers `path` (a file, a folder or prefix of files, local or `s3://`) as table `name`
/// in `ctx`, with the Hive partitions of its folders as extra string columns.
///
/// errors: `Error::Taken` if `name` is registered already; `Error::NoFiles` if no data file
/// is there; `Error::Location`/`Error::List` if the location cannot be reached;
/// `Error::DataFusion` if the files' schema cannot be read.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    path: &str,
    s3: &S3Options,
) -> Result<(), Error> {
    if ctx.table_exist(name)? {
        return Err(Error::Taken(name.to_owned()));
    }
    let (url, ext) = match Location::parse(path, s3)? {
        Location::Local(p) => {
            let abs = std::path::absolute(&p)
                .map_err(|e| Error::List(p.display().to_string(), Box::new(e)))?;
            if abs.is_dir() {
                let ext = local_extension(&abs).ok_or_else(|| Error::NoFiles(path.to_owned()))?;
                (format!("{}/", abs.display()), ext)
            } else {
                let ext = extension_of(&abs.to_string_lossy())
                    .ok_or_else(|| Error::NoFiles(path.to_owned()))?;
                (abs.display().to_string(), ext)
            }
        }
        Location::Object(o) => {
            ctx.register_object_store(&o.base, o.store.clone());
            match extension_of(o.path.as_ref()) {
                Some(ext) => (o.url(), ext),
                None => {
                    let prefix = (!o.path.as_ref().is_empty()).then_some(&o.path);
                    let mut list = o.store.list(prefix);
                    let mut found = None;
                    while let Some(meta) = list.next().await {
                        let meta = meta.map_err(|e| Error::List(o.url(), Box::new(e)))?;
                        let file = meta.location.filename().unwrap_or_default();
                        if !file.starts_with('_')
                            && !file.starts_with('.')
                            && let Some(x) = extension_of(file)
                        {
                            found = Some(x);
                            break;
                        }
                    }
                    let ext = found.ok_or_else(|| Error::NoFiles(path.to_owned()))?;
                    (format!("{}/", o.url()), ext)
                }
            }
        }
    };
    let format: Arc<dyn FileFormat> = match ext {
        "parquet" => Arc::new(ParquetFormat::default()),
        "csv" => Arc::new(CsvFormat::default().with_has_header(true)),
        _ => Arc::new(JsonFormat::default()),
    };
    let options = ListingOptions::new(format).with_file_extension(format!(".{ext}"));
    let state = ctx.state();
    let config = ListingTableConfig::new(ListingTableUrl::parse(&url)?)
        .with_listing_options(options)
        .infer_partitions_from_path(&state)
        .await?
        .infer_schema(&state)
        .await?;
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// Plans `sql` in `ctx` if it is a query: DDL (`CREATE`, `DROP`), DML (`INSERT`, `UPDATE`,
/// `DELETE`, `COPY`) and other statements (`SET`, transactions) are refused before anything
/// runs.
///
/// errors: `Error::NotAQuery` naming what was refused; `Error::DataFusion` if the query does
/// not parse or plan.
pub async fn read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame, Error> {
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let plan = ctx.state().create_logical_plan(sql).await?;
    opts.verify_plan(&plan)
        .map_err(|e| Error::NotAQuery(e.strip_backtrace()))?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_need_a_plain_lower_case_name_and_a_path() {
        assert_eq!(
            parse_spec("lake=s3://b/posts/").unwrap(),
            ("lake".to_owned(), "s3://b/posts/".to_owned())
        );
        assert_eq!(
            parse_spec("p_2=x=y.parquet").unwrap(),
            ("p_2".to_owned(), "x=y.parquet".to_owned())
        );
        for bad in ["lake", "=x", "Lake=x", "1a=x", "a b=x", "a="] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        assert_eq!(extension_of("a/b.PARQUET"), Some("parquet"));
        assert_eq!(extension_of("a/b.jsonl"), Some("jsonl"));
        assert_eq!(extension_of("a/month=2021-07"), None);
    }
}
