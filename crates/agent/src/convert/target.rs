//! The `--to` argument.

use std::path::PathBuf;

/// Where a conversion goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local directory: one stream file per disk and a manifest.
    Dir(PathBuf),
    /// A XenServer / XCP-ng host.
    Xapi { url: String },
}

impl Target {
    pub fn parse(s: &str) -> anyhow::Result<Target> {
        if let Some(path) = s.strip_prefix("dir:") {
            anyhow::ensure!(!path.is_empty(), "dir: needs a path, as in dir:/srv/out");
            return Ok(Target::Dir(PathBuf::from(path)));
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            return Ok(Target::Xapi { url: s.to_string() });
        }
        anyhow::bail!("unknown target {s:?}: use https://HOST, http://HOST or dir:PATH")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(Target::parse("dir:/x").unwrap(), Target::Dir("/x".into()));
        assert!(matches!(
            Target::parse("https://h").unwrap(),
            Target::Xapi { .. }
        ));
        assert!(Target::parse("dir:").is_err());
        let err = Target::parse("/tmp/out").unwrap_err().to_string();
        assert!(err.contains("dir:PATH"), "{err}");
    }
}
