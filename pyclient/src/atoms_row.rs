//! `ase.Atoms` → the stored row (UTF-8 keys, msgpack-numpy values) straight from the
//! Atoms' own arrays: what `encode_row(_atoms_to_dict(atoms, copy=False))` gives, byte for
//! byte, without the intermediate `dict` and without a Python call per frame.
//!
//! Layer: the write-side twin of [`crate::atoms`] (which builds `Atoms` on read); the
//! plans of [`crate::ops`] call it for rows that are `Atoms`, and `_native.encode_atoms`
//! exposes it for `asebytes.encode`.
//!
//! The fast path reads exactly what `_atoms_to_dict` reads, in its order: `cell`
//! (`atoms._cellobj.array`), `pbc` (`atoms._pbc`), `arrays.*` (`atoms.arrays`, in order),
//! `info.*` (`atoms.info`), `calc.*` (`atoms._calc.results`), `constraints` (each
//! constraint's `todict()`, through the Python helper, since constraints are Python
//! objects anyway). Each value goes through the same encoder as every other row
//! ([`codec::encode`]), so the bytes cannot differ from the dict path's.
//!
//! Anything the fast path does not recognise -- a subclass of `Atoms`, a missing or
//! unusual attribute, a non-`str` key in `arrays`, `info` or `results`, a non-zero cell
//! displacement (which must raise the Python path's `ValueError`) -- goes through the
//! Python `_atoms_to_dict` for that frame, so the result (or the error) is always what the
//! dict path gives. `ASEBYTES_ATOMS_ENCODE=python` makes the facades take that path for
//! every frame (for comparisons).

use numpy::npyffi;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods, dtype};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::ase_api::{Api, api};
use crate::codec;

/// A stored row: `(utf-8 key, encoded value)` pairs, in the dict path's order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// `type(obj) is ase.Atoms` or a subclass: a row the plans hand to [`encode_atoms`].
pub fn is_atoms(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let api = api(obj.py())?;
    obj.is_instance(api.atoms.bind(obj.py()))
}

/// The stored row of `atoms`, byte-identical to `encode_row(_atoms_to_dict(atoms))`;
/// raises what `_atoms_to_dict` raises (not Atoms, non-zero celldisp, a constraint that is
/// not a `FixConstraint`) and the encoder's `TypeError` naming the key of a value that
/// cannot be stored.
pub fn encode_atoms(atoms: &Bound<'_, PyAny>) -> PyResult<Fields> {
    let py = atoms.py();
    let api = api(py)?;
    match fast(py, api, atoms)? {
        Some(fields) => Ok(fields),
        None => fallback(py, api, atoms),
    }
}

/// The dict path for one frame: `encode_row(_atoms_to_dict(atoms, copy=False))`.
fn fallback(py: Python<'_>, api: &Api, atoms: &Bound<'_, PyAny>) -> PyResult<Fields> {
    let kwargs = PyDict::new(py);
    kwargs.set_item(api.n.copy.bind(py), false)?;
    let row = api.atoms_to_dict.bind(py).call((atoms,), Some(&kwargs))?;
    codec::encode_row(&row)
}

/// An entry of an instance `__dict__`, `None` when absent.
fn entry<'py>(d: &Bound<'py, PyDict>, name: &Py<PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    d.get_item(name.bind(d.py()))
}

/// The fast path, or `None` when `atoms` needs the dict path.
fn fast(py: Python<'_>, api: &Api, atoms: &Bound<'_, PyAny>) -> PyResult<Option<Fields>> {
    let n = &api.n;
    if !atoms.get_type().is(api.atoms.bind(py)) {
        return Ok(None);
    }
    let Ok(d) = atoms.getattr(n.dict.bind(py))?.cast_into::<PyDict>() else {
        return Ok(None);
    };
    let get = |name| entry(&d, name);
    let (
        Some(cellobj),
        Some(pbc),
        Some(arrays),
        Some(celldisp),
        Some(constraints),
        Some(info),
        Some(calc),
    ) = (
        get(&n.cellobj)?,
        get(&n.pbc)?,
        get(&n.arrays)?,
        get(&n.celldisp)?,
        get(&n.constraints)?,
        get(&n.info)?,
        get(&n.calc)?,
    )
    else {
        return Ok(None);
    };
    if !cellobj.get_type().is(api.cell.bind(py)) || !zero_f64_array(py, &celldisp) {
        return Ok(None);
    }
    let (Ok(arrays), Ok(info), Ok(constraints)) = (
        arrays.cast_exact::<PyDict>(),
        info.cast_exact::<PyDict>(),
        constraints.cast_exact::<PyList>(),
    ) else {
        return Ok(None);
    };
    let results = if calc.is_none() {
        None
    } else {
        match calc
            .getattr(n.results.bind(py))?
            .cast_into_exact::<PyDict>()
        {
            Ok(results) => Some(results),
            Err(_) => return Ok(None),
        }
    };
    // Constraints are checked first, as `_atoms_to_dict` builds them before anything is
    // encoded: a frame with two faults raises the same error on both paths.
    let constraint_dicts = if constraints.is_empty() {
        None
    } else {
        Some(api.constraint_dicts.bind(py).call1((atoms,))?)
    };
    let size = arrays.len() + info.len() + results.as_ref().map_or(0, |r| r.len()) + 3;
    let mut fields = Fields::with_capacity(size);
    let cell = cellobj.getattr(n.array.bind(py))?;
    fields.push((b"cell".to_vec(), codec::encode(&cell, "cell")?));
    fields.push((b"pbc".to_vec(), codec::encode(&pbc, "pbc")?));
    for (prefix, dict) in [
        ("arrays.", Some(arrays)),
        ("info.", Some(info)),
        ("calc.", results.as_ref()),
    ] {
        let Some(dict) = dict else { continue };
        if !push_prefixed(&mut fields, prefix, dict)? {
            return Ok(None);
        }
    }
    if let Some(dicts) = constraint_dicts.filter(|d| d.len().is_ok_and(|n| n > 0)) {
        fields.push((
            b"constraints".to_vec(),
            codec::encode(&dicts, "constraints")?,
        ));
    }
    Ok(Some(fields))
}

/// Appends `prefix + name` → encoded value for every entry of `dict`; `false` (nothing
/// to trust) when a name is not an exact `str`, which the dict path formats its own way.
fn push_prefixed(fields: &mut Fields, prefix: &str, dict: &Bound<'_, PyDict>) -> PyResult<bool> {
    for (name, value) in dict.iter() {
        // A surrogate (no UTF-8 form) gets the dict path's error.
        let Some(name) = name
            .cast_exact::<PyString>()
            .ok()
            .and_then(|n| n.to_str().ok().map(str::to_owned))
        else {
            return Ok(false);
        };
        let mut key = String::with_capacity(prefix.len() + name.len());
        key.push_str(prefix);
        key.push_str(&name);
        let encoded = codec::encode(&value, &key)?;
        fields.push((key.into_bytes(), encoded));
    }
    Ok(true)
}

/// `celldisp` is an exact, aligned, C-contiguous float64 ndarray whose every value is zero
/// (`-0.0` included, as `ndarray.any()` counts it); anything else is left to the dict
/// path, which raises for a displacement or converts what it must.
fn zero_f64_array(py: Python<'_>, value: &Bound<'_, PyAny>) -> bool {
    let Ok(array) = value.cast::<PyUntypedArray>() else {
        return false;
    };
    let want = npyffi::NPY_ARRAY_ALIGNED | npyffi::NPY_ARRAY_C_CONTIGUOUS;
    // SAFETY: PyArray_CheckExact compares the type pointer; the flags are those of a live
    // ndarray we hold a reference to.
    let (exact, flags) = unsafe {
        (
            npyffi::PyArray_CheckExact(py, value.as_ptr()) != 0,
            (*array.as_array_ptr()).fields.flags,
        )
    };
    if !exact || flags & want != want || !array.dtype().is_equiv_to(&dtype::<f64>(py)) {
        return false;
    }
    let count = array.len();
    if count == 0 {
        return true;
    }
    // SAFETY: an aligned, C-contiguous float64 array holds `count` items at `data`, which
    // stays alive while we hold `value`.
    let data = unsafe {
        std::slice::from_raw_parts((*array.as_array_ptr()).fields.data.cast::<f64>(), count)
    };
    data.iter().all(|&v| v == 0.0)
}
