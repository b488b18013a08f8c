//! The HDF5 file: opening it as the reference does (chunk cache `rdcc` 64 MiB, 10007
//! slots), the store's group `/<group>`, its attributes as h5py writes them, flushing, the
//! list of top-level groups, and the one conversion from HDF5 errors to backend errors.
//!
//! HDF5 is not thread-safe; hdf5-metno serialises every library call behind one global
//! lock, and the engine above keeps each file behind its own mutex so a multi-call step
//! (resize, write, attribute) is never interleaved with another thread's. Layer: below
//! [`super::engine`], beside [`super::dataset`].

use std::path::{Path, PathBuf};

use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{File, Group};
use ndarray::Array1;

use crate::backend::{Error, ErrorKind, Result};

/// Bytes of raw-data chunk cache per dataset (h5py `rdcc_nbytes` as the reference sets it).
pub const RDCC_NBYTES: usize = 64 * 1024 * 1024;
/// Hash slots of the chunk cache (the reference's `rdcc_nslots`).
pub const RDCC_NSLOTS: usize = 10007;
/// Chunk preemption policy (h5py's default `rdcc_w0`).
pub const RDCC_W0: f64 = 0.75;

/// Returns a closure converting an HDF5 error met while doing `what` into a backend error.
///
/// HDF5 reports by message only; the kinds a user can act on are picked out: a file
/// another program holds (`Unavailable`), a file that is not HDF5 or is damaged
/// (`Corrupt`), a missing file (`NotFound`).
pub fn h5err(what: &str) -> impl Fn(hdf5::Error) -> Error + '_ {
    move |e| {
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        let (kind, hint) = if lower.contains("unable to lock file") {
            (
                ErrorKind::Unavailable,
                " (another program has the file open; HDF5 lets one writer or several \
                 readers hold it; close it there and retry)",
            )
        } else if lower.contains("already open") {
            (
                ErrorKind::Unavailable,
                " (this daemon has the file open in another mode; close the other store first)",
            )
        } else if lower.contains("no space left on device")
            || lower.contains("errno = 28,")
            || lower.contains("disk quota exceeded")
        {
            (
                ErrorKind::DiskFull,
                " (the disk is full: ENOSPC; free some space and retry)",
            )
        } else if lower.contains("file signature not found") {
            (ErrorKind::Corrupt, " (not an HDF5 file)")
        } else if lower.contains("inflate() failed") {
            (
                ErrorKind::Corrupt,
                " (a compressed chunk of this dataset is damaged, as a kill -9 during a \
                 write can leave it; see docs/backends/hdf5.md)",
            )
        } else if lower.contains("truncated file") || lower.contains("bad object header") {
            (ErrorKind::Corrupt, " (the file is damaged)")
        } else if lower.contains("no such file")
            || lower.contains("doesn't exist")
            || lower.contains("not found")
        {
            (ErrorKind::NotFound, "")
        } else {
            (ErrorKind::Unexpected, "")
        };
        Error::new(kind, format!("HDF5: cannot {what}: {text}{hint}"))
    }
}

/// A file another program holds: the message names the holders `/proc/locks` lists.
/// A lock refusal says so in one sentence instead of libhdf5's error stack.
fn with_holders(mut e: Error, path: &Path) -> Error {
    if e.kind == ErrorKind::Unavailable && e.message.to_ascii_lowercase().contains("lock") {
        let holders = crate::procinfo::lock_holders(path);
        let by = if holders.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = holders.iter().map(ToString::to_string).collect();
            format!(" (held by {})", list.join(", "))
        };
        e.message = format!(
            "cannot open {}: another program has the file open{by}; HDF5 lets one writer or \
             several readers hold a file at a time: close it there (or let it finish) and retry",
            path.display()
        );
    }
    e
}

/// One open HDF5 file.
#[derive(Debug)]
pub struct H5File {
    file: File,
    path: PathBuf,
}

impl H5File {
    /// Opens `path` read-only, or read-write creating it if missing.
    pub fn open(path: &Path, readonly: bool) -> Result<H5File> {
        let mut b = File::with_options();
        b.with_fapl(|p| p.chunk_cache(RDCC_NSLOTS, RDCC_NBYTES, RDCC_W0));
        let what = format!("open {}", path.display());
        let file = if readonly {
            if !path.exists() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("HDF5 file {} does not exist", path.display()),
                ));
            }
            b.open(path)
                .map_err(|e| with_holders(h5err(&what)(e), path))?
        } else {
            b.append(path)
                .map_err(|e| with_holders(h5err(&what)(e), path))?
        };
        Ok(H5File {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root group (`/`).
    pub fn root(&self) -> Group {
        (*self.file).clone()
    }

    /// Whether the file was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.file.is_read_only()
    }

    /// The top-level group `name`; created when `create` (read-write files only), else
    /// `None` when it does not exist.
    pub fn group(&self, name: &str, create: bool) -> Result<Option<Group>> {
        if self.file.link_exists(name) {
            return self
                .file
                .group(name)
                .map(Some)
                .map_err(h5err(&format!("open group '{name}'")));
        }
        if !create {
            return Ok(None);
        }
        self.file
            .create_group(name)
            .map(Some)
            .map_err(h5err(&format!("create group '{name}'")))
    }

    /// Deletes the top-level group `name` and everything in it (space is not reclaimed,
    /// as always in HDF5).
    pub fn delete_group(&self, name: &str) -> Result<()> {
        if self.file.link_exists(name) {
            self.file
                .unlink(name)
                .map_err(h5err(&format!("delete group '{name}'")))?;
        }
        Ok(())
    }

    /// Writes everything this process buffered for the file to the OS (`H5Fflush`), so a
    /// later kill of the process cannot lose it.
    pub fn flush(&self) -> Result<()> {
        self.file
            .flush()
            .map_err(h5err(&format!("flush {}", self.path.display())))
    }

    /// Closes the file.
    pub fn close(self) -> Result<()> {
        let what = format!("close {}", self.path.display());
        self.file.close().map_err(h5err(&what))
    }
}

/// Top-level groups of the HDF5 file at `path`, sorted (empty if the file does not
/// exist), as the reference's `list_groups` for `.h5`.
pub fn list_groups(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = H5File::open(path, true)?;
    let groups = f
        .file
        .groups()
        .map_err(h5err(&format!("list the groups of {}", path.display())))?;
    let mut names: Vec<String> = groups
        .iter()
        .map(|g| g.name().trim_start_matches('/').to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// Names of the datasets directly in `group`.
pub fn dataset_names(group: &Group) -> Result<Vec<String>> {
    let ds = group
        .datasets()
        .map_err(h5err(&format!("list the datasets of {}", group.name())))?;
    Ok(ds
        .iter()
        .map(|d| {
            let n = d.name();
            n.rsplit('/').next().unwrap_or(&n).to_string()
        })
        .collect())
}

/// Reads an integer attribute (any integer width), `None` if absent.
pub fn read_int_attr(group: &Group, name: &str) -> Result<Option<i64>> {
    if !group
        .attr_names()
        .map_err(h5err("list attributes"))?
        .iter()
        .any(|n| n == name)
    {
        return Ok(None);
    }
    let a = group
        .attr(name)
        .map_err(h5err(&format!("open attribute '{name}'")))?;
    a.read_scalar::<i64>()
        .map(Some)
        .map_err(h5err(&format!("read attribute '{name}'")))
}

/// Writes an `int64` scalar attribute. An existing integer scalar attribute is overwritten
/// in place (one small metadata write: this is the layout's commit point).
pub fn write_int_attr(group: &Group, name: &str, value: i64) -> Result<()> {
    let what = format!("write attribute '{name}'");
    if let Some(a) = existing_attr(group, name)? {
        let in_place = a.is_scalar()
            && matches!(
                a.dtype().and_then(|t| t.to_descriptor()),
                Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_))
            );
        if in_place {
            return a.write_scalar(&value).map_err(h5err(&what));
        }
        group.delete_attr(name).map_err(h5err(&what))?;
    }
    group
        .new_attr::<i64>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .map_err(h5err(&what))
}

/// Reads a list-of-strings attribute as h5py writes `list[str]` (vlen strings); a
/// zero-length attribute of any type (h5py writes `[]` as an empty float array) is an
/// empty list. `None` if absent.
pub fn read_str_list_attr(group: &Group, name: &str) -> Result<Option<Vec<String>>> {
    let Some(a) = existing_attr(group, name)? else {
        return Ok(None);
    };
    let what = format!("read attribute '{name}'");
    if a.size() == 0 {
        return Ok(Some(Vec::new()));
    }
    let desc = a
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(&what))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let list = match desc {
        TypeDescriptor::VarLenAscii => a
            .read_raw::<hdf5::types::VarLenAscii>()
            .map_err(h5err(&what))?
            .iter()
            .map(|s| text(s.as_bytes()))
            .collect(),
        TypeDescriptor::VarLenUnicode => a
            .read_raw::<VarLenUnicode>()
            .map_err(h5err(&what))?
            .iter()
            .map(|s| text(s.as_bytes()))
            .collect(),
        other => {
            return Err(Error::corrupt(format!(
                "attribute '{name}' of {} should hold strings, holds {other}",
                group.name()
            )));
        }
    };
    Ok(Some(list))
}

/// Writes a list of strings as h5py writes `attrs[name] = list_of_str` (a 1-D vlen UTF-8
/// array), replacing any existing attribute.
pub fn write_str_list_attr(group: &Group, name: &str, values: &[String]) -> Result<()> {
    let what = format!("write attribute '{name}'");
    let items = to_vlen(values, name)?;
    if existing_attr(group, name)?.is_some() {
        group.delete_attr(name).map_err(h5err(&what))?;
    }
    group
        .new_attr_builder()
        .with_data(&Array1::from(items))
        .create(name)
        .map(drop)
        .map_err(h5err(&what))
}

/// Reads a scalar string attribute, `None` if absent or not a string.
pub fn read_str_attr(group: &Group, name: &str) -> Result<Option<String>> {
    let Some(a) = existing_attr(group, name)? else {
        return Ok(None);
    };
    match a.read_scalar::<VarLenUnicode>() {
        Ok(s) => Ok(Some(String::from_utf8_lossy(s.as_bytes()).into_owned())),
        Err(_) => Ok(None),
    }
}

/// Writes a scalar vlen UTF-8 string attribute, replacing any existing one.
pub fn write_str_attr(group: &Group, name: &str, value: &str) -> Result<()> {
    let what = format!("write attribute '{name}'");
    let item = to_vlen(&[value], name)?.pop().unwrap_or_default();
    if existing_attr(group, name)?.is_some() {
        group.delete_attr(name).map_err(h5err(&what))?;
    }
    group
        .new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&item))
        .map_err(h5err(&what))
}

fn existing_attr(group: &Group, name: &str) -> Result<Option<hdf5::Attribute>> {
    let names = group.attr_names().map_err(h5err("list attributes"))?;
    if !names.iter().any(|n| n == name) {
        return Ok(None);
    }
    group
        .attr(name)
        .map(Some)
        .map_err(h5err(&format!("open attribute '{name}'")))
}

fn to_vlen<S: AsRef<str>>(values: &[S], name: &str) -> Result<Vec<VarLenUnicode>> {
    values
        .iter()
        .map(|s| s.as_ref().parse::<VarLenUnicode>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("attribute '{name}': HDF5 strings cannot hold a NUL character"),
            )
        })
}
