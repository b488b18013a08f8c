//! What a hub location and its options ask for: which dataset repository (`hf://owner/name`,
//! `colabfit://name` → `colabfit/name`, `optimade://owner/name`), which config, split and
//! revision, streamed or downloaded, through which mapping, from which endpoint and cache,
//! with which token. The Python client fills `endpoint`, `cache_dir` and `token` from its
//! own `HF_ENDPOINT`, `HF_HOME`/`HF_HUB_CACHE` and `HF_TOKEN`; the daemon's environment is
//! the fallback.
//!
//! Layer: inside [`super`] (the hub backend).

use std::path::PathBuf;

use asebytes_protocol::OptionValue;

use super::mapping::Mapping;
use crate::backend::{Error, ErrorKind, Options, Result};

/// Option names the hub entries take.
pub const OPTIONS: &[&str] = &[
    "split",
    "name",
    "revision",
    "streaming",
    "mapping",
    "token",
    "endpoint",
    "cache_dir",
];

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// One hub dataset as asked for.
#[derive(Clone)]
pub struct HubConfig {
    /// `owner/name`.
    pub repo: String,
    /// `split=`.
    pub split: Option<String>,
    /// `name=` (the config).
    pub config: Option<String>,
    /// `revision=` (`main`).
    pub revision: String,
    /// `streaming=` (default true): read byte ranges instead of downloading first.
    pub streaming: bool,
    /// The column mapping.
    pub mapping: Mapping,
    /// The Hub's base URL, without a trailing `/`.
    pub endpoint: String,
    /// The HF cache (`$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// Bearer token; `None` reads `$HF_HOME/token` like `huggingface_hub`.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: never contact the endpoint.
    pub offline: bool,
}

impl std::fmt::Debug for HubConfig {
    /// Everything but the token's value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("repo", &self.repo)
            .field("split", &self.split)
            .field("config", &self.config)
            .field("revision", &self.revision)
            .field("streaming", &self.streaming)
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

fn string(options: &Options, name: &str) -> Result<Option<String>> {
    match options.get(name) {
        None => Ok(None),
        Some(OptionValue::Str(s)) => Ok(Some(s.clone())),
        Some(v) => Err(Error::new(
            ErrorKind::TypeMismatch,
            format!("option {name} must be a str, got {}", v.type_name()),
        )),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
fn default_cache_dir() -> PathBuf {
    if let Some(dir) = env("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    let home = env("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env("HOME").unwrap_or_else(|| "/tmp".into()))
            .join(".cache")
            .join("huggingface")
    });
    home.join("hub")
}

impl HubConfig {
    /// Parses the canonical location (`colabfit://name`, scheme included) and the options.
    pub fn parse(location: &str, options: &Options) -> Result<Self> {
        let (scheme, rest) = location
            .split_once("://")
            .ok_or_else(|| invalid(format!("'{location}' is not a scheme://owner/name URI")))?;
        let rest = rest.trim_matches('/');
        if rest.is_empty() || rest.split('/').any(str::is_empty) || rest.split('/').count() > 2 {
            return Err(invalid(format!(
                "'{location}' does not name a dataset repository (expected {scheme}://owner/name)"
            )));
        }
        let given = match string(options, "mapping")? {
            Some(text) => Some(Mapping::from_json(&text)?),
            None => None,
        };
        let (repo, mapping) = match scheme {
            "colabfit" if !rest.contains('/') => (format!("colabfit/{rest}"), given),
            "colabfit" => (rest.to_string(), given),
            _ => (rest.to_string(), given),
        };
        let mapping = match (scheme, mapping) {
            (_, Some(m)) => m,
            ("colabfit", None) => Mapping::colabfit(),
            ("optimade", None) => Mapping::optimade(),
            _ => {
                return Err(invalid(format!(
                    "hf:// URIs require an explicit mapping= (a ColumnMapping) for '{rest}'; \
                     colabfit:// and optimade:// have default mappings"
                )));
            }
        };
        let endpoint = string(options, "endpoint")?
            .or_else(|| env("HF_ENDPOINT"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let cache_dir = string(options, "cache_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(default_cache_dir);
        let offline = env("HF_HUB_OFFLINE").is_some_and(|v| !matches!(v.as_str(), "0" | "false"));
        Ok(Self {
            repo,
            split: string(options, "split")?,
            config: string(options, "name")?,
            revision: string(options, "revision")?.unwrap_or_else(|| "main".into()),
            streaming: options.bool("streaming")?.unwrap_or(true),
            mapping,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache_dir,
            token: string(options, "token")?.or_else(|| env("HF_TOKEN")),
            offline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        pairs.iter().fold(Options::default(), |o, (k, v)| {
            o.with(k, OptionValue::Str((*v).to_string()))
        })
    }

    #[test]
    fn colabfit_prepends_its_org_and_takes_its_mapping() {
        let c =
            HubConfig::parse("colabfit://mlearn_Cu_train", &opts(&[("split", "train")])).unwrap();
        assert_eq!(c.repo, "colabfit/mlearn_Cu_train");
        assert_eq!(c.mapping, Mapping::colabfit());
        assert_eq!(c.split.as_deref(), Some("train"));
        assert!(c.streaming);
        let c = HubConfig::parse("optimade://LeMaterial/LeMat-Traj", &opts(&[])).unwrap();
        assert_eq!(
            (c.repo.as_str(), c.mapping),
            ("LeMaterial/LeMat-Traj", Mapping::optimade())
        );
    }

    #[test]
    fn hf_needs_a_mapping_and_a_repo() {
        let e = HubConfig::parse("hf://me/ds", &opts(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("mapping="), "{}", e.message);
        let m = r#"{"positions":"pos","numbers":"z"}"#;
        assert_eq!(
            HubConfig::parse("hf://me/ds", &opts(&[("mapping", m)]))
                .unwrap()
                .repo,
            "me/ds"
        );
        assert!(HubConfig::parse("hf://a/b/c", &opts(&[("mapping", m)])).is_err());
        assert!(HubConfig::parse("hf://", &opts(&[("mapping", m)])).is_err());
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = HubConfig::parse("colabfit://x", &opts(&[("token", "hf_secret")])).unwrap();
        assert!(!format!("{c:?}").contains("hf_secret"));
    }
}
