//! What a Redis store writes where: exactly the keys of asebytes 0.3.3's `RedisBlobBackend`
//! (`asebytes-behaviour.md` §4.5), so a group written by either is read by the other.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<g>:sort_keys` | LIST | the rows' sort keys in row order, ASCII decimal |
//! | `<g>:next_sk` | STRING | how many sort keys were ever handed out (INCRBY) |
//! | `<g>:row:<sk>` | HASH | one row: field name → value, both bytes |
//!
//! A sort key in the list without a hash is a placeholder row (Redis has no empty
//! hashes). Values are stored exactly as the client sent them: raw bytes on the blob tier
//! (`BlobIO`), msgpack-numpy documents on the object and ASE tiers, which is what the
//! reference's `BlobToObject` adapter writes over its Redis blob backend. Field names are
//! the keys' UTF-8 bytes (`calc.energy`).
//!
//! Layer: inside [`super`] (the Redis backend); the scripts in [`super::scripts`] follow
//! the same layout.

/// Suffix of the list key that makes a group exist (what `list_groups` scans for).
pub const SORT_KEYS_SUFFIX: &str = ":sort_keys";

/// The key names of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyNames {
    /// `<g>:sort_keys`.
    pub sort_keys: String,
    /// `<g>:next_sk`.
    pub next_sk: String,
    /// `<g>:row:`; a row's key is this followed by its sort key.
    pub row_prefix: String,
}

impl KeyNames {
    /// The keys of `group`.
    pub fn new(group: &str) -> Self {
        Self {
            sort_keys: format!("{group}{SORT_KEYS_SUFFIX}"),
            next_sk: format!("{group}:next_sk"),
            row_prefix: format!("{group}:row:"),
        }
    }

    /// `<g>:row:<sk>`.
    pub fn row(&self, sort_key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.row_prefix.len() + sort_key.len());
        k.extend_from_slice(self.row_prefix.as_bytes());
        k.extend_from_slice(sort_key);
        k
    }

    /// A SCAN pattern matching every row key of this group (and, because `*` matches
    /// `:`, row-like keys of groups whose name extends this one: filter with
    /// [`KeyNames::is_row_key`]).
    pub fn row_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.row_prefix))
    }

    /// Whether `key` is a row key of this group: the row prefix followed by a decimal
    /// sort key only (so `a:row:row:5`, a row of group `a:row`, is not one of group `a`).
    pub fn is_row_key(&self, key: &[u8]) -> bool {
        key.strip_prefix(self.row_prefix.as_bytes())
            .is_some_and(|sk| !sk.is_empty() && sk.iter().all(u8::is_ascii_digit))
    }
}

/// The group a `<g>:sort_keys` key belongs to.
pub fn group_of(list_key: &[u8]) -> Option<String> {
    let g = list_key.strip_suffix(SORT_KEYS_SUFFIX.as_bytes())?;
    String::from_utf8(g.to_vec()).ok()
}

/// Escapes Redis glob metacharacters so a group name matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_references() {
        let k = KeyNames::new("default");
        assert_eq!(k.sort_keys, "default:sort_keys");
        assert_eq!(k.next_sk, "default:next_sk");
        assert_eq!(k.row(b"12"), b"default:row:12");
        assert_eq!(group_of(b"md-run-7:sort_keys").as_deref(), Some("md-run-7"));
        assert_eq!(group_of(b"md-run-7:next_sk"), None);
    }

    #[test]
    fn row_keys_of_other_groups_are_not_ours() {
        let k = KeyNames::new("a");
        assert!(k.is_row_key(b"a:row:0"));
        assert!(k.is_row_key(b"a:row:12345"));
        assert!(!k.is_row_key(b"a:row:row:5"));
        assert!(!k.is_row_key(b"a:row:"));
        assert!(!k.is_row_key(b"a:sort_keys"));
        assert_eq!(KeyNames::new("x*[y]").row_pattern(), "x\\*\\[y\\]:row:*");
    }
}
