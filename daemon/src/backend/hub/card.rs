//! The dataset card: the `configs:` list in the YAML front matter of a Hub repo's
//! `README.md`, which names each config's data files per split (`datasets` reads the same).
//! Only the YAML that cards use for it is understood: block mappings and sequences, plain
//! and quoted scalars, and flow lists of scalars (`["a/*", "b/*"]`); anything else in the
//! front matter is skipped.
//!
//! Layer: inside [`super`] (the hub backend); [`super::resolve`] reads the card.

/// One config of a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `config_name` (`default` when absent).
    pub name: String,
    /// `(split, glob patterns)`; a bare `data_files` is the `train` split.
    pub splits: Vec<(String, Vec<String>)>,
    /// `default: true`.
    pub default: bool,
}

/// A parsed YAML node (the subset above).
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn scalars(&self) -> Vec<String> {
        match self {
            Node::Scalar(s) => vec![s.clone()],
            Node::List(items) => items.iter().flat_map(Node::scalars).collect(),
            Node::Map(_) => Vec::new(),
        }
    }
}

/// The configs of a card (`README.md` text); empty when it declares none.
pub fn configs(readme: &str) -> Vec<Config> {
    let Some(front) = front_matter(readme) else {
        return Vec::new();
    };
    let lines: Vec<(usize, &str)> = front
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (l.len() - l.trim_start().len(), l.trim_end()))
        .collect();
    let mut pos = 0;
    let Node::Map(top) = parse_block(&lines, &mut pos, 0) else {
        return Vec::new();
    };
    let Some((_, Node::List(items))) = top.iter().find(|(k, _)| k == "configs") else {
        return Vec::new();
    };
    items.iter().filter_map(config).collect()
}

fn config(node: &Node) -> Option<Config> {
    let name = match node.get("config_name") {
        Some(Node::Scalar(s)) => s.clone(),
        _ => "default".to_string(),
    };
    let default = matches!(node.get("default"), Some(Node::Scalar(s)) if s == "true");
    let files = node.get("data_files")?;
    let splits = match files {
        Node::List(items) if items.iter().all(|i| matches!(i, Node::Map(_))) => items
            .iter()
            .filter_map(|i| {
                let split = i.get("split")?.scalars().into_iter().next()?;
                Some((split, i.get("path")?.scalars()))
            })
            .collect(),
        other => vec![("train".to_string(), other.scalars())],
    };
    Some(Config {
        name,
        splits,
        default,
    })
}

fn front_matter(readme: &str) -> Option<&str> {
    let rest = readme.strip_prefix("---")?;
    let rest = rest.strip_prefix('\r').unwrap_or(rest).strip_prefix('\n')?;
    let end = rest.find("\n---")?;
    Some(&rest[..end])
}

/// Parses the block starting at `lines[*pos]` whose lines are indented `indent` (a
/// sequence may sit at its parent key's indent, as YAML allows).
fn parse_block(lines: &[(usize, &str)], pos: &mut usize, indent: usize) -> Node {
    let Some(&(ind, first)) = lines.get(*pos) else {
        return Node::Map(Vec::new());
    };
    if ind < indent {
        return Node::Map(Vec::new());
    }
    if first.trim_start().starts_with("- ") || first.trim() == "-" {
        let mut items = Vec::new();
        while let Some(&(i, line)) = lines.get(*pos) {
            let t = line.trim_start();
            if i != ind || !(t.starts_with("- ") || t == "-") {
                break;
            }
            let body = t[1..].trim_start();
            if body.is_empty() {
                *pos += 1;
                items.push(parse_block(lines, pos, ind + 1));
            } else if key_value(body).is_some() {
                // `- key: value` opens a mapping whose keys sit at the item's indent.
                let item_indent = ind + (t.len() - body.len());
                let mut sub: Vec<(usize, &str)> = vec![(item_indent, body)];
                let mut j = *pos + 1;
                while let Some(&(i2, l2)) = lines.get(j) {
                    if i2 <= ind {
                        break;
                    }
                    sub.push((i2, l2));
                    j += 1;
                }
                let mut p = 0;
                items.push(parse_block(&sub, &mut p, item_indent));
                *pos = j;
            } else {
                items.push(scalar(body));
                *pos += 1;
            }
        }
        return Node::List(items);
    }
    let mut map = Vec::new();
    while let Some(&(i, line)) = lines.get(*pos) {
        if i != ind {
            if i > ind {
                *pos += 1; // an over-indented line we do not understand
                continue;
            }
            break;
        }
        let Some((key, value)) = key_value(line.trim_start()) else {
            *pos += 1;
            continue;
        };
        *pos += 1;
        let node = if value.is_empty() {
            match lines.get(*pos) {
                Some(&(next, l))
                    if next > ind || (next == ind && l.trim_start().starts_with('-')) =>
                {
                    parse_block(lines, pos, next)
                }
                _ => Node::Scalar(String::new()),
            }
        } else {
            scalar(value)
        };
        map.push((key, node));
    }
    Node::Map(map)
}

/// `key: value` (value possibly empty); `None` when the line is not a mapping entry.
fn key_value(line: &str) -> Option<(String, &str)> {
    let (key, value) = if let Some(rest) = line.strip_prefix('"') {
        let end = rest.find('"')?;
        (rest[..end].to_string(), rest[end + 1..].strip_prefix(':')?)
    } else {
        let at = line
            .find(": ")
            .or_else(|| line.ends_with(':').then(|| line.len() - 1))?;
        (line[..at].trim().to_string(), &line[at + 1..])
    };
    Some((key, value.trim()))
}

fn scalar(text: &str) -> Node {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return Node::List(
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(scalar)
                .collect(),
        );
    }
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| t.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)))
        .unwrap_or(t);
    Node::Scalar(unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colabfit_card_is_one_config_with_a_train_split() {
        let card = "---\nlicense: cc-by-4.0\nconfigs:\n- config_name: default\n  data_files: \"main/*.parquet\"\ntags:\n- x\n---\n# Title\n";
        assert_eq!(
            configs(card),
            [Config {
                name: "default".into(),
                splits: vec![("train".into(), vec!["main/*.parquet".into()])],
                default: false,
            }]
        );
    }

    #[test]
    fn split_lists_path_lists_and_flow_lists_parse() {
        let card = "---\nconfigs:\n  - config_name: compatible_pbe\n    data_files:\n      - split: train\n        path: compatible_pbe/train/*\n      - split: test\n        path:\n          - a/*.parquet\n          - b/*.parquet\n    default: true\n  - config_name: other\n    data_files: [\"x/*\", 'y/*']\n---\n";
        let c = configs(card);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].name, "compatible_pbe");
        assert!(c[0].default);
        assert_eq!(
            c[0].splits,
            [
                (
                    "train".to_string(),
                    vec!["compatible_pbe/train/*".to_string()]
                ),
                (
                    "test".to_string(),
                    vec!["a/*.parquet".to_string(), "b/*.parquet".to_string()]
                ),
            ]
        );
        assert_eq!(c[1].splits[0].1, ["x/*", "y/*"]);
    }

    #[test]
    fn a_card_without_configs_has_none() {
        assert!(configs("# no front matter").is_empty());
        assert!(configs("---\nlicense: mit\n---\n").is_empty());
    }
}
