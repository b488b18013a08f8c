//! The HDF5 engine's undo log: what one transaction changed, so that a rollback can put
//! the group back as the last commit left it (HDF5 itself has no transactions).
//!
//! Layer: used by [`super::engine`] and the H5MD engine ([`crate::backend::h5md::engine`]).

use std::collections::BTreeMap;

use super::dataset::Column;
use crate::backend::Result;

/// How to put back an overwritten region of a committed array.
#[derive(Debug)]
pub(crate) enum Undo {
    Raw {
        start: Vec<usize>,
        count: Vec<usize>,
        bytes: Vec<u8>,
    },
    Strings {
        start: usize,
        values: Vec<String>,
    },
}

/// A committed array this transaction changed: its committed shape and the old contents.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub(crate) shape: Vec<usize>,
    pub(crate) undo: Vec<Undo>,
}

/// What the open transaction did to one current array name.
#[derive(Debug)]
pub(crate) enum Stage {
    Created,
    Changed(Touched),
}

#[derive(Debug, Default)]
pub(crate) struct Tx {
    pub(crate) group_created: bool,
    pub(crate) names: BTreeMap<String, Stage>,
    /// `(trash name, original name, its undo record)`.
    pub(crate) trashed: Vec<(String, String, Touched)>,
    pub(crate) trash_seq: u64,
    /// Bytes of data the transaction has written so far (see [`super::room`]).
    pub(crate) written: u64,
}

impl Touched {
    /// Puts a committed array back as the transaction found it.
    pub(crate) fn restore(&self, col: &Column) -> Result<()> {
        col.resize(&self.shape)?;
        for u in self.undo.iter().rev() {
            match u {
                Undo::Raw {
                    start,
                    count,
                    bytes,
                } => col.write_raw(start, count, bytes)?,
                Undo::Strings { start, values } => {
                    col.write_strings(&[*start], &[values.len()], values)?
                }
            }
        }
        Ok(())
    }
}

/// The part of the box `start..start+count` inside `shape`, if any.
pub(crate) fn clip(start: &[usize], count: &[usize], shape: &[usize]) -> Option<Vec<usize>> {
    let c: Vec<usize> = start
        .iter()
        .zip(count)
        .zip(shape)
        .map(|((&s, &c), &n)| n.saturating_sub(s).min(c))
        .collect();
    (c.len() == shape.len() && c.iter().all(|&x| x > 0)).then_some(c)
}
