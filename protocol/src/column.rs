//! A column as one array: what a columnar store answers to a packed column read, so a
//! client builds one numpy array without decoding a value per row.
//!
//! Since protocol [`crate::version::OPTIONS_AND_PACKED`].

use serde::{Deserialize, Serialize};

use crate::value::Bytes;

/// The values of one key over the rows asked for, packed.
///
/// - Per-row values of one shape: `shape = [rows, ...item shape]`, `offsets = None`.
/// - Ragged per-atom values: `data` holds the rows' arrays concatenated along axis 0,
///   `shape = [total, ...trailing]`, and row `r` is `data[offsets[r]..offsets[r + 1]]`
///   (`offsets` has `rows + 1` entries).
///
/// A row that lacks the key (or is a placeholder) has `present[r] == 0`; its slot in a
/// uniform column holds the fill value, in a ragged column it is empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedColumn {
    /// numpy `dtype.str` of the elements, e.g. `<f8`, `|b1`, `<i8`.
    pub dtype: String,
    /// Shape of `data` (C order).
    pub shape: Vec<u64>,
    /// The elements, C order, in the byte order `dtype` names.
    pub data: Bytes,
    /// One byte per row: 1 where the row has the key. `None`: every row has it.
    #[serde(default)]
    pub present: Option<Bytes>,
    /// Ragged columns: row boundaries along axis 0 of `data` (`rows + 1` entries).
    #[serde(default)]
    pub offsets: Option<Vec<u64>>,
}

impl PackedColumn {
    /// Number of rows this column covers.
    pub fn rows(&self) -> u64 {
        match &self.offsets {
            Some(o) => o.len().saturating_sub(1) as u64,
            None => self.shape.first().copied().unwrap_or(0),
        }
    }

    /// Whether row `r` has the key.
    pub fn is_present(&self, r: usize) -> bool {
        self.present.as_ref().is_none_or(|p| p.get(r) == Some(&1))
    }
}
