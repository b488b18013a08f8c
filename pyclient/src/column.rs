//! One column reply packed into one numpy array (`to_numpy()`).
//!
//! Values that are numbers or msgpack-numpy arrays are copied straight from the reply
//! bytes into a fresh `(n, *value_shape)` array, with no per-row Python object; anything
//! else is decoded and handed to `numpy.array`, and accepted only if that gives a
//! non-object dtype. Every refusal is a `ValueError` that says why and points to
//! `to_list()`.

use numpy::npyffi::{self, NpyTypes, PY_ARRAY_API, PyArray_Descr, PyArrayObject, npy_intp};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::args::type_name;
use asebytes_protocol::codec::Corrupt;

use crate::codec::{self, Numeric};
use crate::errors::{AsebytesValueError, OrRaise, stored_corrupt};

/// The column being packed: its key and how to name its rows in messages.
#[derive(Debug)]
pub struct Column<'c> {
    /// The key, for messages.
    pub key: &'c str,
    /// The store rows asked for (`None`: every row, so position = row).
    pub rows: Option<&'c [i64]>,
}

impl Column<'_> {
    /// The store row of the `j`-th value.
    fn row(&self, j: usize) -> i64 {
        match self.rows {
            Some(rows) => rows[j],
            None => i64::try_from(j).unwrap_or(i64::MAX),
        }
    }

    fn error(&self, what: String, advice: &str) -> PyErr {
        AsebytesValueError::new_err(format!("Column '{}' {what}; {advice}", self.key))
    }

    /// Packs `values` (one per selected row) into one array the caller owns.
    pub fn pack<'py>(
        &self,
        py: Python<'py>,
        values: &[Option<&[u8]>],
    ) -> PyResult<Bound<'py, PyAny>> {
        if values.is_empty() {
            return Ok(numpy::PyArray1::<f64>::zeros(py, [0], false).into_any());
        }
        let mut present = Vec::with_capacity(values.len());
        for (j, v) in values.iter().enumerate() {
            let Some(v) = v else {
                return Err(self.error(
                    format!(
                        "has no value at row {} (placeholder row or a row without the key)",
                        self.row(j)
                    ),
                    "to_numpy() needs a value in every row -- use to_list()",
                ));
            };
            present.push(*v);
        }
        match present
            .iter()
            .map(|v| codec::numeric(v))
            .collect::<Option<Vec<_>>>()
        {
            Some(items) => self.pack_numeric(py, &items),
            None => self.pack_through_python(py, &present),
        }
    }

    /// Every value is a number or numeric array: check shapes and dtypes, then copy.
    fn pack_numeric<'py>(
        &self,
        py: Python<'py>,
        items: &[Numeric<'_>],
    ) -> PyResult<Bound<'py, PyAny>> {
        let first = &items[0];
        let descr = codec::dtype_for(py, first.type_str)?;
        for (j, item) in items.iter().enumerate().skip(1) {
            if item.shape.as_slice() != first.shape.as_slice() {
                return Err(self.error(
                    format!(
                        "is ragged: row {} has shape {} but row {} has shape {}",
                        self.row(0),
                        tuple(first.shape.as_slice()),
                        self.row(j),
                        tuple(item.shape.as_slice())
                    ),
                    "to_numpy() needs one shape and dtype -- use to_list() for per-frame arrays",
                ));
            }
            if item.type_str != first.type_str {
                let other = codec::dtype_for(py, item.type_str)?;
                if !descr.is_equiv_to(&other) {
                    return Err(self.error(
                        format!(
                            "mixes dtypes: row {} has dtype {} but row {} has dtype {}",
                            self.row(0),
                            descr.str()?,
                            self.row(j),
                            other.str()?
                        ),
                        "to_numpy() needs one shape and dtype -- use to_list()",
                    ));
                }
            }
        }
        let row_bytes = first
            .shape
            .as_slice()
            .iter()
            .try_fold(descr.itemsize(), |acc, &d| {
                usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or_else(|| Corrupt("array shape overflows".into()))
            .or_raise()?;
        let mut dims = Vec::with_capacity(1 + first.shape.as_slice().len());
        dims.push(
            npy_intp::try_from(items.len())
                .map_err(|_| Corrupt("too many rows".into()))
                .or_raise()?,
        );
        for &d in first.shape.as_slice() {
            dims.push(
                npy_intp::try_from(d)
                    .map_err(|_| Corrupt("array dimension too large".into()))
                    .or_raise()?,
            );
        }
        let out = empty_array(py, &descr, &mut dims)?;
        // SAFETY: `out` is a fresh C-contiguous array of `items.len() * row_bytes` bytes
        // that nothing else references yet; each row is written once, within bounds.
        unsafe {
            let dst = (*(out.as_ptr() as *mut PyArrayObject))
                .fields
                .data
                .cast::<u8>();
            for (j, item) in items.iter().enumerate() {
                let src = item.items.bytes();
                if src.len() < row_bytes {
                    return Err(stored_corrupt(Corrupt(format!(
                        "row {} holds {} bytes of data, its shape and dtype need {row_bytes}",
                        self.row(j),
                        src.len()
                    ))));
                }
                std::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(j * row_bytes), row_bytes);
            }
        }
        Ok(out)
    }

    /// Some value is not a number or numeric array (a list, str, dict, ...): decode all
    /// and let numpy decide, refusing what only an object array could hold.
    fn pack_through_python<'py>(
        &self,
        py: Python<'py>,
        values: &[&[u8]],
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = self.key.as_bytes();
        let decoded = values
            .iter()
            .map(|v| codec::decode_field(py, key, v))
            .collect::<PyResult<Vec<_>>>()?;
        let advice = "to_numpy() needs numbers or arrays of one shape and dtype -- use to_list()";
        let odd = || {
            let j = values
                .iter()
                .position(|v| codec::numeric(v).is_none())
                .unwrap_or(0);
            format!("row {} holds a {}", self.row(j), type_name(&decoded[j]))
        };
        let np = py.import(pyo3::intern!(py, "numpy"))?;
        let array = match np.call_method1(pyo3::intern!(py, "array"), (PyList::new(py, &decoded)?,))
        {
            Ok(a) => a,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) => {
                return Err(self.error(format!("does not form one array ({}): {e}", odd()), advice));
            }
            Err(e) => return Err(e),
        };
        let kind: char = array
            .getattr(pyo3::intern!(py, "dtype"))?
            .getattr(pyo3::intern!(py, "kind"))?
            .extract()?;
        if kind == 'O' {
            return Err(self.error(
                format!("does not form one numeric array ({})", odd()),
                advice,
            ));
        }
        Ok(array)
    }
}

impl Column<'_> {
    /// A packed column reply (one array from a columnar store) as the caller's own numpy
    /// array: the reply's bytes become the array's buffer without another copy. Refuses,
    /// as [`Column::pack`] does, rows without a value and ragged per-atom columns
    /// (frames with different atom counts); equal atom counts give `(rows, atoms, ...)`.
    pub fn unpack<'py>(
        &self,
        py: Python<'py>,
        col: asebytes_protocol::PackedColumn,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = usize::try_from(col.rows())
            .map_err(|_| Corrupt("too many rows".into()))
            .or_raise()?;
        if let Some(j) = (0..rows).find(|&j| !col.is_present(j)) {
            return Err(self.error(
                format!(
                    "has no value at row {} (placeholder row or a row without the key)",
                    self.row(j)
                ),
                "to_numpy() needs a value in every row -- use to_list()",
            ));
        }
        let descr = codec::dtype_for(py, col.dtype.as_bytes())?;
        let mut shape: Vec<u64> = col.shape.clone();
        if let Some(offsets) = &col.offsets {
            let lengths: Vec<u64> = offsets
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]))
                .collect();
            if let Some(j) = lengths.iter().position(|&n| n != lengths[0]) {
                return Err(self.error(
                    format!(
                        "is ragged: row {} has shape {} but row {} has shape {}",
                        self.row(0),
                        row_shape(lengths[0], &shape[1..]),
                        self.row(j),
                        row_shape(lengths[j], &shape[1..])
                    ),
                    "to_numpy() needs one shape and dtype -- use to_list() for per-atom arrays",
                ));
            }
            let per_row = lengths.first().copied().unwrap_or(0);
            let start = offsets.first().copied().unwrap_or(0);
            if start != 0 || shape.first() != Some(&(per_row * rows as u64)) {
                return Err(stored_corrupt(Corrupt(
                    "packed offsets do not cover the data".into(),
                )));
            }
            shape.splice(0..1, [rows as u64, per_row]);
        }
        let want = shape
            .iter()
            .try_fold(descr.itemsize() as u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Corrupt("array shape overflows".into()))
            .or_raise()?;
        if want != col.data.len() as u64 {
            return Err(stored_corrupt(Corrupt(format!(
                "packed column holds {} bytes, its shape and dtype need {want}",
                col.data.len()
            ))));
        }
        let bytes = numpy::PyArray1::<u8>::from_vec(py, col.data.into_vec());
        let typed = bytes.call_method1(pyo3::intern!(py, "view"), (descr,))?;
        typed.call_method1(pyo3::intern!(py, "reshape"), (shape,))
    }
}

/// The shape of one row of a ragged column, as Python prints it: `(atoms, *trailing)`.
fn row_shape(atoms: u64, trailing: &[u64]) -> String {
    let dims: Vec<u64> = std::iter::once(atoms)
        .chain(trailing.iter().copied())
        .collect();
    tuple(&dims)
}

/// `(9, 3)`, `(3,)`, `()`: a shape as Python prints it.
fn tuple(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A fresh, uninitialised, writable C-ordered array of `descr` with `dims`.
fn empty_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    dims: &mut [npy_intp],
) -> PyResult<Bound<'py, PyAny>> {
    let nd = std::os::raw::c_int::try_from(dims.len())
        .map_err(|_| Corrupt("too many dimensions".into()))
        .or_raise()?;
    // SAFETY: PyArray_NewFromDescr steals one reference to the descriptor (hence the
    // incref), allocates C-ordered storage for `dims` and returns a new reference or NULL.
    unsafe {
        let descr_ptr = descr.as_ptr() as *mut PyArray_Descr;
        pyo3::ffi::Py_INCREF(descr_ptr.cast());
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr_ptr,
            nd,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, arr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_as_python_tuples() {
        assert_eq!(tuple(&[]), "()");
        assert_eq!(tuple(&[3]), "(3,)");
        assert_eq!(tuple(&[9, 3]), "(9, 3)");
    }
}
