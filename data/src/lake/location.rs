//! Table locations: URLs (`file:///…`, `s3://bucket/prefix`) or plain local paths.

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::{Error, Result};

/// Parses a table location: a URL with a scheme, or a local path (relative to the working
/// directory). Local paths become `file://` URLs of absolute directories.
pub fn parse(location: &str) -> Result<Url> {
    let invalid = |reason: String| Error::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    // Every table operation starts here: deltalake must use isolake's stores first.
    super::local_store::register();
    super::s3_store::register();
    if location.trim().is_empty() {
        return Err(invalid("the location is empty".into()));
    }
    // A Windows drive letter parses as a one-letter scheme: treat it as a path.
    if let Ok(url) = Url::parse(location)
        && url.scheme().len() > 1
    {
        return Ok(ensure_trailing_slash(url));
    }
    let absolute = std::path::absolute(Path::new(location))
        .map_err(|e| invalid(format!("cannot make the path absolute: {e}")))?;
    let url = Url::from_directory_path(&absolute)
        .map_err(|()| invalid("not a valid directory path".into()))?;
    Ok(url)
}

/// The URL schemes of object stores isolake opens (`s3://`, `s3a://`).
pub const OBJECT_STORE_SCHEMES: [&str; 2] = ["s3", "s3a"];

/// Whether `location` names an object store (as opposed to a path or `file://` URL).
pub fn is_object_store(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| OBJECT_STORE_SCHEMES.contains(&scheme))
}

/// The local directory of a `file://` location, or an error naming the unsupported scheme.
pub fn local_dir(url: &Url) -> Result<PathBuf> {
    if url.scheme() != "file" {
        return Err(Error::UnsupportedScheme {
            location: url.to_string(),
        });
    }
    url.to_file_path().map_err(|()| Error::InvalidLocation {
        location: url.to_string(),
        reason: "not a local path".into(),
    })
}

fn ensure_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_become_absolute_file_urls() {
        let url = parse("lake/bronze").expect("a relative path is a location");
        assert_eq!(url.scheme(), "file");
        assert!(url.path().ends_with("/lake/bronze/"), "{url}");
        let back = local_dir(&url).expect("file URLs are local");
        assert!(back.is_absolute());
    }

    #[test]
    fn urls_keep_their_scheme() {
        let url = parse("file:///tmp/t").expect("file URL");
        assert_eq!(url.as_str(), "file:///tmp/t/");
        let s3 = parse("s3://bucket/t").expect("s3 URL parses");
        assert!(matches!(
            local_dir(&s3),
            Err(Error::UnsupportedScheme { .. })
        ));
        assert!(parse("  ").is_err());
        assert!(is_object_store("s3://bucket/t") && is_object_store("s3a://b/t"));
        assert!(!is_object_store("file:///tmp/t") && !is_object_store("lake/s3://x"));
    }
}
