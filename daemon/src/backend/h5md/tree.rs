//! The H5MD tree in an HDF5 file: the `/h5md` skeleton (version, author, creator),
//! element groups (`value` + scalar `step`/`time`, `ASE_ENTRY_ORIGIN`, units), the box
//! attributes, finding the elements of a group, `list_groups` and the `.h5` sniff.
//!
//! Layer: below [`super::engine`]; uses the `hdf5` backend's file, dataset and attribute
//! helpers.

use std::path::Path;

use hdf5::Group;
use hdf5::types::VarLenUnicode;
use serde_json::json;

use super::names::{KEY_ATTR, ORIGIN_ATTR, Placement};
use crate::backend::hdf5::attrs;
use crate::backend::hdf5::dataset::{Column, CreateSpec};
use crate::backend::hdf5::file::{self, H5File, h5err};
use crate::backend::{Error, ErrorKind, Result};

/// `/h5md` `creator` name.
pub const CREATOR: &str = "asebytes-rs";

/// Author written to `/h5md/author` on creation.
#[derive(Clone, Debug, Default)]
pub struct Author<'a> {
    /// `name` attribute.
    pub name: Option<&'a str>,
    /// `email` attribute.
    pub email: Option<&'a str>,
}

/// `root/<path>`, creating every missing group on the way.
pub fn require_group(root: &Group, path: &str) -> Result<Group> {
    let mut g = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        g = if g.link_exists(part) {
            g.group(part)
                .map_err(h5err(&format!("open group '{path}'")))?
        } else {
            g.create_group(part)
                .map_err(h5err(&format!("create group '{path}'")))?
        };
    }
    Ok(g)
}

/// The group at `path` if it exists and is a group.
pub fn group_at(root: &Group, path: &str) -> Option<Group> {
    exists(root, path).then(|| root.group(path).ok()).flatten()
}

/// Whether every link of `path` exists (HDF5 fails on a missing intermediate).
pub fn exists(root: &Group, path: &str) -> bool {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if !root.link_exists(&at) {
            return false;
        }
    }
    !at.is_empty()
}

/// Writes the `/h5md` skeleton (H5MD 1.1) and `/particles` if the file lacks them.
pub fn ensure_skeleton(root: &Group, author: &Author<'_>) -> Result<()> {
    if !root.link_exists("h5md") {
        let h = require_group(root, "h5md")?;
        attrs::write_one(&h, "version", &json!([1, 1]))?;
        let a = require_group(&h, "author")?;
        if let Some(n) = author.name {
            file::write_str_attr(&a, "name", n)?;
        }
        if let Some(e) = author.email {
            file::write_str_attr(&a, "email", e)?;
        }
        let c = require_group(&h, "creator")?;
        file::write_str_attr(&c, "name", CREATOR)?;
        file::write_str_attr(&c, "version", env!("CARGO_PKG_VERSION"))?;
    }
    require_group(root, "particles")?;
    Ok(())
}

/// Creates the element `place.path` (group, `value` as `spec`, `step` = 1, `time` = 1.0
/// fs, origin, unit, and [`KEY_ATTR`] = `key` when `tag_key`), and the box group's
/// attributes for `cell`/`pbc`. Returns the `value` column.
pub fn create_element(
    root: &Group,
    place: &Placement,
    key: &str,
    tag_key: bool,
    spec: &CreateSpec,
) -> Result<Column> {
    let g = require_group(root, &place.path)?;
    file::write_str_attr(&g, ORIGIN_ATTR, place.origin)?;
    if tag_key {
        file::write_str_attr(&g, KEY_ATTR, key)?;
    }
    let col = Column::create(root, &format!("{}/value", place.path), spec)?;
    if let Some(unit) = place.unit {
        let ds = root
            .dataset(&format!("{}/value", place.path))
            .map_err(h5err("open value"))?;
        let v: VarLenUnicode = unit.parse().unwrap_or_default();
        ds.new_attr::<VarLenUnicode>()
            .create("unit")
            .and_then(|a| a.write_scalar(&v))
            .map_err(h5err("write the unit"))?;
    }
    write_step_time(&g)?;
    if let Some(box_path) = place
        .path
        .strip_suffix("/edges")
        .or(place.path.strip_suffix("/pbc"))
        && box_path.ends_with("/box")
    {
        let b = require_group(root, box_path)?;
        file::write_int_attr(&b, "dimension", 3)?;
        if file::read_str_list_attr(&b, "boundary")?.is_none() {
            file::write_str_list_attr(&b, "boundary", &vec!["periodic".to_string(); 3])?;
        }
    }
    Ok(col)
}

/// Scalar `step` (int32 1) and `time` (float64 1.0, unit fs): znh5md's "linear" store.
pub fn write_step_time(g: &Group) -> Result<()> {
    if !g.link_exists("step") {
        g.new_dataset::<i32>()
            .create("step")
            .and_then(|d| d.write_scalar(&1_i32))
            .map_err(h5err("write step"))?;
    }
    if !g.link_exists("time") {
        let t = g
            .new_dataset::<f64>()
            .create("time")
            .map_err(h5err("write time"))?;
        t.write_scalar(&1.0_f64).map_err(h5err("write time"))?;
        let v: VarLenUnicode = "fs".parse().unwrap_or_default();
        t.new_attr::<VarLenUnicode>()
            .create("unit")
            .and_then(|a| a.write_scalar(&v))
            .map_err(h5err("write the time unit"))?;
    }
    Ok(())
}

/// The box's `boundary` attribute from one frame's pbc (`periodic`/`none`).
pub fn write_boundary(root: &Group, box_path: &str, pbc: [bool; 3]) -> Result<()> {
    if let Some(b) = group_at(root, box_path) {
        let v: Vec<String> = pbc
            .iter()
            .map(|&p| if p { "periodic" } else { "none" }.to_string())
            .collect();
        file::write_str_list_attr(&b, "boundary", &v)?;
    }
    Ok(())
}

/// One element found in the tree.
#[derive(Clone, Debug)]
pub struct Found {
    /// Element path from the root.
    pub path: String,
    /// Its `ASE_ENTRY_ORIGIN`.
    pub origin: Option<String>,
    /// Its [`KEY_ATTR`].
    pub key: Option<String>,
}

/// Every element (a group holding a `value` dataset) under `/particles/<g>` and
/// `/observables/<g>`, looking into plain groups such as `box`.
pub fn elements(root: &Group, g: &str) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for top in ["particles", "observables"] {
        let base = format!("{top}/{g}");
        if let Some(grp) = group_at(root, &base) {
            walk(&grp, &base, 0, &mut out)?;
        }
    }
    Ok(out)
}

fn walk(g: &Group, path: &str, depth: usize, out: &mut Vec<Found>) -> Result<()> {
    if depth > 2 {
        return Ok(());
    }
    let names = g
        .member_names()
        .map_err(h5err(&format!("list the members of '{path}'")))?;
    for name in names {
        let Ok(child) = g.group(&name) else {
            continue;
        };
        let p = format!("{path}/{name}");
        if child.link_exists("value") && child.dataset("value").is_ok() {
            out.push(Found {
                origin: file::read_str_attr(&child, ORIGIN_ATTR)?,
                key: file::read_str_attr(&child, KEY_ATTR)?,
                path: p,
            });
        } else {
            walk(&child, &p, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Groups of `/particles` (what `list_groups` answers; none for a missing file).
pub fn list_groups(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = H5File::open(path, true)?;
    let root = f.root();
    let Some(p) = group_at(&root, "particles") else {
        return Ok(Vec::new());
    };
    let mut names = p
        .member_names()
        .map_err(h5err(&format!("list the groups of {}", path.display())))?;
    names.sort();
    Ok(names)
}

/// The first group of `/particles` in an existing file (the reference's default group).
pub fn first_group(path: &Path) -> Option<String> {
    let f = H5File::open(path, true).ok()?;
    let p = group_at(&f.root(), "particles")?;
    p.member_names().ok()?.into_iter().next()
}

/// Whether `path` is an existing HDF5 file whose root holds an `h5md` group.
pub fn is_h5md(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    // Cheap check first: the HDF5 signature, so other files are never handed to libhdf5.
    let mut sig = [0u8; 8];
    let ok = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut sig))
        .is_ok();
    if !ok || &sig != b"\x89HDF\r\n\x1a\n" {
        return false;
    }
    H5File::open(path, true)
        .map(|f| f.root().link_exists("h5md"))
        .unwrap_or(false)
}

/// Refuses group names that cannot be one HDF5 path component.
pub fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.contains('/') || group == "." || group == ".." {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("'{group}' is not a valid H5MD particles group name"),
        ));
    }
    Ok(())
}
