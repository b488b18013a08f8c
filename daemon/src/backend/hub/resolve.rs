//! From `owner/name` + config + split to the Parquet files that hold the rows, the way
//! `datasets` finds them: the repo's file list at a revision (pinned to its commit), the
//! card's `configs[].data_files` globs, else the Hub's `refs/convert/parquet` branch
//! (`<config>/<split>/*.parquet`), else every `*.parquet` as one `train` split; files in
//! sorted path order. Streamed files stay on the Hub (read by range, or from the HF cache
//! when already there); `streaming=False` downloads them into the HF cache first (hf-hub).
//! When the Hub cannot be reached (or `HF_HUB_OFFLINE` is set) the HF cache answers alone.
//!
//! Layer: inside [`super`] (the hub backend), over [`super::http`] and hf-hub.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use serde::Deserialize;

use super::card::{self, Config};
use super::config::HubConfig;
use super::http::{self, Http};
use super::parquet::ParquetFile;
use crate::backend::{Error, ErrorKind, Result};

/// The largest API answer or card read (a listing of a huge repo is a few MB).
const MAX_TEXT: usize = 64 << 20;

/// The repo at a revision, as the Hub lists it.
#[derive(Debug, Deserialize)]
struct RepoInfo {
    sha: String,
    siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
struct Sibling {
    rfilename: String,
}

/// Where the repo's files are listed from.
enum Listing {
    /// The Hub at commit `sha`.
    Online { sha: String },
    /// The HF cache's snapshot directory.
    Cached { snapshot: PathBuf },
}

fn repo_at(cfg: &HubConfig, revision: &str) -> Repo {
    Repo::with_revision(cfg.repo.clone(), RepoType::Dataset, revision.to_string())
}

fn escape(revision: &str) -> String {
    revision.replace('/', "%2F")
}

/// Opens the Parquet files of the config and split `cfg` asks for.
pub fn open_files(cfg: &HubConfig, http: &Http) -> Result<Vec<ParquetFile>> {
    let cache = Cache::new(cfg.cache_dir.clone());
    let what = format!("dataset '{}' (revision {})", cfg.repo, cfg.revision);
    let online = if cfg.offline {
        None
    } else {
        match info(cfg, http, &cfg.revision, &what) {
            Ok(info) => Some(info),
            Err(e) if http::unreachable(&e) && snapshot(&cache, cfg).is_some() => {
                log::info!("{what}: {e}; reading the HF cache");
                None
            }
            Err(e) => return Err(e),
        }
    };
    let (listing, files) = match online {
        Some(info) => {
            let names = info.siblings.into_iter().map(|s| s.rfilename).collect();
            (Listing::Online { sha: info.sha }, names)
        }
        None => {
            let snapshot = snapshot(&cache, cfg).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{what} is not in the HF cache at {} (offline)",
                        cfg.cache_dir.display()
                    ),
                )
            })?;
            let mut names = Vec::new();
            walk(&snapshot, &snapshot, &mut names);
            (Listing::Cached { snapshot }, names)
        }
    };
    let mut configs = match read_card(cfg, http, &listing, &files) {
        Some(text) => card::configs(&text),
        None => Vec::new(),
    };
    let mut listed = files;
    if configs.is_empty()
        && let Listing::Online { .. } = listing
        && let Ok(converted) = info(cfg, http, "refs/convert/parquet", &what)
    {
        configs = converted_configs(&converted.siblings);
        if !configs.is_empty() {
            let names: Vec<String> = converted
                .siblings
                .into_iter()
                .map(|s| s.rfilename)
                .collect();
            let chosen = choose(cfg, &configs, &names, &what)?;
            let listing = Listing::Online { sha: converted.sha };
            return open_listed(cfg, http, &cache, &listing, &chosen);
        }
    }
    if configs.is_empty() {
        configs = vec![Config {
            name: "default".into(),
            splits: vec![(
                "train".into(),
                vec!["**/*.parquet".into(), "*.parquet".into()],
            )],
            default: true,
        }];
    }
    listed.sort();
    let chosen = choose(cfg, &configs, &listed, &what)?;
    open_listed(cfg, http, &cache, &listing, &chosen)
}

fn info(cfg: &HubConfig, http: &Http, revision: &str, what: &str) -> Result<RepoInfo> {
    let url = format!(
        "{}/api/datasets/{}/revision/{}",
        cfg.endpoint,
        cfg.repo,
        escape(revision)
    );
    let text = http.text(&url, what, MAX_TEXT)?;
    serde_json::from_str(&text).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("{what}: the Hub's file listing is not valid: {e}"),
        )
    })
}

/// The cached snapshot of the revision `cfg` names, if the HF cache has one.
fn snapshot(cache: &Cache, cfg: &HubConfig) -> Option<PathBuf> {
    let dir = cache.path().join(repo_at(cfg, &cfg.revision).folder_name());
    let sha = std::fs::read_to_string(dir.join("refs").join(&cfg.revision)).ok()?;
    let snapshot = dir.join("snapshots").join(sha.trim());
    snapshot.is_dir().then_some(snapshot)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

fn read_card(cfg: &HubConfig, http: &Http, listing: &Listing, files: &[String]) -> Option<String> {
    if !files.iter().any(|f| f == "README.md") {
        return None;
    }
    match listing {
        Listing::Cached { snapshot } => std::fs::read_to_string(snapshot.join("README.md")).ok(),
        Listing::Online { sha } => match fetch(cfg, sha, "README.md") {
            Ok(path) => std::fs::read_to_string(path).ok(),
            Err(e) => {
                log::debug!(
                    "{}: README.md not cached ({e}); reading it directly",
                    cfg.repo
                );
                let url = resolve_url(cfg, sha, "README.md");
                http.text(&url, "README.md", MAX_TEXT).ok()
            }
        },
    }
}

fn resolve_url(cfg: &HubConfig, sha: &str, path: &str) -> String {
    format!(
        "{}/datasets/{}/resolve/{}/{}",
        cfg.endpoint, cfg.repo, sha, path
    )
}

/// Downloads `path` at commit `sha` into the HF cache with hf-hub (a no-op when cached)
/// and records the user's revision as pointing at `sha`, so the cache can answer offline.
fn fetch(cfg: &HubConfig, sha: &str, path: &str) -> Result<PathBuf> {
    let cache = Cache::new(cfg.cache_dir.clone());
    let token = cfg.token.clone().or_else(|| cache.token());
    let api = ApiBuilder::from_cache(cache.clone())
        .with_endpoint(cfg.endpoint.clone())
        .with_token(token)
        .with_progress(false)
        .build()
        .map_err(|e| api_error(path, e))?;
    let local = api
        .repo(repo_at(cfg, sha))
        .get(path)
        .map_err(|e| api_error(path, e))?;
    cache
        .repo(repo_at(cfg, &cfg.revision))
        .create_ref(sha)
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HF cache: {e}")))?;
    Ok(local)
}

fn api_error(what: &str, e: ApiError) -> Error {
    match e {
        ApiError::RequestError(inner) => http::failure(what, *inner),
        other => Error::new(
            ErrorKind::Unavailable,
            format!("{what}: download failed: {other}"),
        ),
    }
}

/// Configs from the `refs/convert/parquet` layout: `<config>/<split>/NNNN.parquet`, or
/// `<config>/partial-<split>/…` for a truncated conversion.
fn converted_configs(siblings: &[Sibling]) -> Vec<Config> {
    let mut configs: Vec<Config> = Vec::new();
    for s in siblings {
        let parts: Vec<&str> = s.rfilename.split('/').collect();
        let [config, split_dir, file] = parts[..] else {
            continue;
        };
        if !file.ends_with(".parquet") {
            continue;
        }
        let split = split_dir
            .strip_prefix("partial-")
            .unwrap_or(split_dir)
            .to_string();
        let pattern = format!("{config}/{split_dir}/*.parquet");
        let c = match configs.iter_mut().position(|c| c.name == config) {
            Some(i) => &mut configs[i],
            None => {
                configs.push(Config {
                    name: config.to_string(),
                    splits: Vec::new(),
                    default: false,
                });
                configs.last_mut().expect("just pushed")
            }
        };
        if !c.splits.iter().any(|(name, _)| *name == split) {
            c.splits.push((split, vec![pattern]));
        }
    }
    configs
}

/// The files of the config and split `cfg` asks for, or an error naming those that exist.
fn choose(
    cfg: &HubConfig,
    configs: &[Config],
    files: &[String],
    what: &str,
) -> Result<Vec<String>> {
    let names = || configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let config = match &cfg.config {
        Some(name) => configs.iter().find(|c| &c.name == name).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{what} has no config name='{name}'; available configs: {:?}",
                    names()
                ),
            )
        })?,
        None => match configs {
            [only] => only,
            _ => configs
                .iter()
                .find(|c| c.default)
                .or_else(|| configs.iter().find(|c| c.name == "default"))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "{what} has several configs: {:?}; pick one with name=",
                            names()
                        ),
                    )
                })?,
        },
    };
    let splits: Vec<&str> = config.splits.iter().map(|(s, _)| s.as_str()).collect();
    let patterns = match &cfg.split {
        Some(split) => config
            .splits
            .iter()
            .find(|(s, _)| s == split)
            .map(|(_, p)| p)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{what} config '{}' has no split '{split}'; available splits: {splits:?}",
                        config.name
                    ),
                )
            })?,
        None => match &config.splits[..] {
            [(_, p)] => p,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "Dataset '{}' has multiple splits: {splits:?}. Please specify one, e.g. \
                         split='{}'.",
                        cfg.repo,
                        splits.first().copied().unwrap_or("train")
                    ),
                ));
            }
        },
    };
    let mut chosen: Vec<String> = files
        .iter()
        .filter(|f| f.ends_with(".parquet") && patterns.iter().any(|p| glob(p, f)))
        .cloned()
        .collect();
    chosen.sort();
    chosen.dedup();
    if chosen.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{what}: no Parquet file matches {patterns:?} (config '{}')",
                config.name
            ),
        ));
    }
    Ok(chosen)
}

fn open_listed(
    cfg: &HubConfig,
    http: &Http,
    cache: &Cache,
    listing: &Listing,
    chosen: &[String],
) -> Result<Vec<ParquetFile>> {
    chosen
        .iter()
        .map(|path| match listing {
            Listing::Cached { snapshot } => ParquetFile::local(path.clone(), &snapshot.join(path)),
            Listing::Online { sha } => {
                let cached = cache.repo(repo_at(cfg, sha)).get(path);
                match (cached, cfg.streaming) {
                    (Some(local), _) => ParquetFile::local(path.clone(), &local),
                    (None, true) => {
                        ParquetFile::remote(path.clone(), resolve_url(cfg, sha, path), http.clone())
                    }
                    (None, false) => ParquetFile::local(path.clone(), &fetch(cfg, sha, path)?),
                }
            }
        })
        .collect()
}

/// `fsspec`-style glob on repo paths: `*` and `?` stay within one path segment, `**`
/// crosses segments (also none).
pub fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', b'/', rest @ ..] => {
                go(rest, s) || (0..s.len()).any(|i| s[i] == b'/' && go(rest, &s[i + 1..]))
            }
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| go(rest, &s[i..])),
            [b'?', rest @ ..] => matches!(s, [c, tail @ ..] if *c != b'/' && go(rest, tail)),
            [c, rest @ ..] => matches!(s, [d, tail @ ..] if d == c && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fsspec() {
        assert!(glob("main/*.parquet", "main/part-0.parquet"));
        assert!(!glob("main/*.parquet", "main/sub/part-0.parquet"));
        assert!(glob(
            "compatible_pbe/train/*",
            "compatible_pbe/train/0000.parquet"
        ));
        assert!(glob("**/*.parquet", "a/b/c.parquet"));
        assert!(glob("**/*.parquet", "c.parquet"));
        assert!(!glob("data/train-*", "data/test-0.parquet"));
    }

    #[test]
    fn converted_layout_gives_configs_and_splits() {
        let s = |n: &str| Sibling {
            rfilename: n.into(),
        };
        let c = converted_configs(&[
            s("default/train/0000.parquet"),
            s("default/train/0001.parquet"),
            s("default/partial-test/0000.parquet"),
            s("other/train/0000.parquet"),
            s(".gitattributes"),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].splits[0],
            (
                "train".to_string(),
                vec!["default/train/*.parquet".to_string()]
            )
        );
        assert_eq!(c[0].splits[1].0, "test");
    }
}
