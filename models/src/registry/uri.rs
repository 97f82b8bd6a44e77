//! Model URIs: `models:/NAME@ALIAS`, `models:/NAME/VERSION`, or a path to an artifact file.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// A parsed model URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/NAME@ALIAS`: whatever version the alias points at now.
    Alias {
        /// Registered model name.
        name: String,
        /// Alias, e.g. `production`.
        alias: String,
    },
    /// `models:/NAME/VERSION`: exactly that version.
    Version {
        /// Registered model name.
        name: String,
        /// Version number.
        version: u64,
    },
    /// An artifact file (a path or `file://` URL).
    File(PathBuf),
}

impl ModelUri {
    /// Parses a model URI.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |reason: &str| Error::RegistryInput {
            reason: format!(
                "model URI {uri:?}: {reason}; use models:/NAME@ALIAS, models:/NAME/VERSION or \
                 a path to a model artifact"
            ),
        };
        if let Some(rest) = uri.strip_prefix("models:/") {
            if let Some((name, alias)) = rest.split_once('@') {
                check_name(name).map_err(|r| bad(&r))?;
                check_name(alias).map_err(|r| bad(&format!("alias: {r}")))?;
                return Ok(ModelUri::Alias {
                    name: name.into(),
                    alias: alias.into(),
                });
            }
            let (name, version) = rest
                .rsplit_once('/')
                .ok_or_else(|| bad("no version or alias after the name"))?;
            check_name(name).map_err(|r| bad(&r))?;
            let version: u64 = version
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad("the version must be a whole number from 1"))?;
            return Ok(ModelUri::Version {
                name: name.into(),
                version,
            });
        }
        if uri.starts_with("file:") {
            let url = url::Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
            let path = url
                .to_file_path()
                .map_err(|()| bad("not a local file URL"))?;
            return Ok(ModelUri::File(path));
        }
        if uri.contains("://") {
            return Err(bad("remote artifact URLs are not supported"));
        }
        if uri.trim().is_empty() {
            return Err(bad("it is empty"));
        }
        Ok(ModelUri::File(PathBuf::from(uri)))
    }
}

/// A registered model name or alias: non-empty, no `/`, `@`, control characters, and not a
/// path component that could escape the local registry's directory.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Err(format!("{name:?} may not start with a dot"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '@' | ':') || c.is_control())
    {
        return Err(format!("{name:?} contains {c:?}"));
    }
    if name.len() > 200 {
        return Err("the name is longer than 200 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            ModelUri::parse("models:/fraud@production").ok(),
            Some(ModelUri::Alias {
                name: "fraud".into(),
                alias: "production".into()
            })
        );
        assert_eq!(
            ModelUri::parse("models:/fraud/12").ok(),
            Some(ModelUri::Version {
                name: "fraud".into(),
                version: 12
            })
        );
        assert_eq!(
            ModelUri::parse("lake/m.isolake").ok(),
            Some(ModelUri::File("lake/m.isolake".into()))
        );
        assert_eq!(
            ModelUri::parse("file:///tmp/m.isolake").ok(),
            Some(ModelUri::File("/tmp/m.isolake".into()))
        );
    }

    #[test]
    fn refuses_malformed_uris() {
        for uri in [
            "models:/fraud",
            "models:/fraud/0",
            "models:/fraud/x",
            "models:/../x/1",
            "models:/@prod",
            "models:/a/b/c",
            "s3://bucket/m",
            "",
        ] {
            assert!(
                matches!(ModelUri::parse(uri), Err(Error::RegistryInput { .. })),
                "{uri}"
            );
        }
    }
}
