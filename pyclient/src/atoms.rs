//! `ase.Atoms` built natively from a stored row: what
//! `asebytes._convert.dict_to_atoms(row, copy=False)` returns, without the intermediate
//! `dict` and without ASE's constructors.
//!
//! The fast path mirrors `_fast_dict_to_atoms` and `_make_calc` of `_convert.py` field for
//! field: it assigns exactly the instance attributes the installed ASE's `Atoms.__init__`
//! and `Calculator.__init__` set (the Python test suite checks the Python fast path against
//! ASE's public constructors, and this one against the Python path). Arrays the decoder just
//! made are fresh, writable and owned by the caller, so they are used as they are; the
//! calculator's `.atoms` is an independent snapshot (copies of the arrays, cell, pbc and
//! celldisp), so moving an atom makes `get_potential_energy()` raise
//! `PropertyNotImplementedError` as in ASE.
//!
//! **Fewer objects for the cyclic GC.** An `Atoms` with a calculator is eight GC-tracked
//! objects, and CPython's collector walks every one of them again and again while a
//! program keeps frames (a list of 20,000 read frames: about half of the time per frame
//! went to collections). Five of them can never be part of a reference cycle unless a
//! program builds one on purpose, so they are built untracked (`PyObject_GC_UnTrack`, what
//! CPython itself does to tuples and dicts that hold only untracked values): both `Cell`s
//! (one `ndarray` each), the calculator's `Parameters` (empty), and the calculator's
//! snapshot `Atoms` with its constraints list (only the calculator points at it; ASE
//! replaces it, never edits it).
//! The `Atoms` a caller gets, its constraints list and its calculator stay tracked, so the
//! cycles programs do make (`atoms.calc.atoms = atoms`, a constraint holding its `Atoms`)
//! are collected as before. An untracked object is never freed early: what it references
//! counts as referenced from outside, so the only cost is that a cycle a program builds
//! through one of the five (say `atoms.cell.owner = atoms`) is never collected.
//! `ASEBYTES_GC_UNTRACK=0` builds everything tracked.
//!
//! Exactly where `_fast_dict_to_atoms` would return `None` (wrong dtype or shape, a list
//! instead of an array, inconsistent lengths), the row is decoded into a `dict` and handed
//! to the Python `dict_to_atoms(row, copy=False)`, so the result is always what the Python
//! path builds. Constraints (rare) are built by the Python helper `_constraints_from`.

use numpy::npyffi::{self, NPY_ORDER, PY_ARRAY_API, PyArray_Descr, PyArrayObject, npy_intp};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyType};

use crate::ase_api::{Api, api};
use crate::client::Field;
use crate::codec;

// ------------------------------------------------------------------------------------
// numpy helpers
// ------------------------------------------------------------------------------------

/// `value` as an array struct if `type(value) is np.ndarray` (subclasses excluded, as in
/// the Python fast path).
fn exact_array(py: Python<'_>, value: &Bound<'_, PyAny>) -> Option<*mut PyArrayObject> {
    // SAFETY: PyArray_CheckExact only compares the type pointer.
    (unsafe { npyffi::PyArray_CheckExact(py, value.as_ptr()) } != 0)
        .then(|| value.as_ptr().cast::<PyArrayObject>())
}

/// The shape of an array we hold a reference to.
fn shape<'a>(arr: *mut PyArrayObject) -> &'a [npy_intp] {
    // SAFETY: `arr` is a live ndarray (kept alive by the caller's reference for as long
    // as the slice is used); `dimensions` holds `nd` entries.
    unsafe {
        let nd = (*arr).fields.nd as usize;
        if nd == 0 {
            return &[];
        }
        std::slice::from_raw_parts((*arr).fields.dimensions, nd)
    }
}

/// `len(array)` for an array of at least one dimension.
fn dim0(value: &Bound<'_, PyAny>) -> npy_intp {
    shape(value.as_ptr().cast())[0]
}

/// `arr.dtype == want` (numpy's dtype equality: equivalent types, byte order included).
fn has_dtype(py: Python<'_>, arr: *mut PyArrayObject, want: &Py<PyArrayDescr>) -> bool {
    let want = want.as_ptr().cast::<PyArray_Descr>();
    // SAFETY: both descriptors are alive; PyArray_EquivTypes only reads them.
    unsafe {
        let have = (*arr).fields.descr;
        have == want || PY_ARRAY_API.PyArray_EquivTypes(py, have, want) != 0
    }
}

/// `value` itself when it is writable and C-contiguous, else a C-ordered copy
/// (`_owned` / the custom-array rule of the Python fast path with `copy=False`).
fn owned<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let arr = value.as_ptr().cast::<PyArrayObject>();
    let want = npyffi::NPY_ARRAY_WRITEABLE | npyffi::NPY_ARRAY_C_CONTIGUOUS;
    // SAFETY: `value` is an ndarray (checked by the caller); reading its flags is safe.
    if unsafe { (*arr).fields.flags } & want == want {
        return Ok(value);
    }
    copy_array(py, &value)
}

/// Type numbers at or above this are user-defined dtypes, whose items may be pointers.
const NPY_USERDEF: std::os::raw::c_int = 256;

/// `array.copy()` of an exact ndarray: a fresh C-ordered array of the same dtype. A
/// C-contiguous array (every array here: the decoder only makes plain-old-data dtypes, so
/// its bytes are its value) is copied with one `memcpy`, skipping numpy's casting machinery.
fn copy_array<'py>(py: Python<'py>, array: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let src = array.as_ptr().cast::<PyArrayObject>();
    // SAFETY: `src` is a live exact ndarray. On the fast path its descriptor is
    // plain-old-data (no object references, a builtin type number: the decoder's own rule),
    // so the new, uninitialised array of the same descriptor and shape is fully initialised
    // by copying its `nbytes` contiguous bytes. PyArray_NewFromDescr steals one reference
    // to the descriptor (hence the incref); both constructors return a new reference or
    // NULL with an exception set.
    unsafe {
        let fields = &(*src).fields;
        let descr = fields.descr;
        let d = Bound::from_borrowed_ptr(py, descr.cast()).cast_into_unchecked::<PyArrayDescr>();
        let plain = !d.has_object() && d.num() < NPY_USERDEF;
        if !plain || fields.flags & npyffi::NPY_ARRAY_C_CONTIGUOUS == 0 {
            let copy = PY_ARRAY_API.PyArray_NewCopy(py, src, NPY_ORDER::NPY_CORDER);
            return Bound::from_owned_ptr_or_err(py, copy);
        }
        ffi::Py_INCREF(descr.cast());
        let copy = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr,
            fields.nd,
            fields.dimensions,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        let copy = Bound::from_owned_ptr_or_err(py, copy)?;
        let count: npy_intp = shape(src).iter().product();
        let nbytes = count as usize * d.itemsize();
        if nbytes > 0 {
            let dst = (*copy.as_ptr().cast::<PyArrayObject>()).fields.data;
            std::ptr::copy_nonoverlapping(fields.data.cast::<u8>(), dst.cast::<u8>(), nbytes);
        }
        Ok(copy)
    }
}

/// `np.zeros(dims, dtype)`.
fn zeros<'py>(
    py: Python<'py>,
    dims: &[npy_intp],
    dtype: &Py<PyArrayDescr>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: PyArray_Zeros steals one reference to the descriptor (hence the incref),
    // only reads `dims`, and returns a new, zero-filled C-ordered array or NULL with an
    // exception set.
    unsafe {
        let descr = dtype.as_ptr();
        ffi::Py_INCREF(descr);
        let arr = PY_ARRAY_API.PyArray_Zeros(
            py,
            dims.len() as std::os::raw::c_int,
            dims.as_ptr().cast_mut(),
            descr.cast::<PyArray_Descr>(),
            0,
        );
        Bound::from_owned_ptr_or_err(py, arr)
    }
}

// ------------------------------------------------------------------------------------
// Python objects without their constructors
// ------------------------------------------------------------------------------------

/// `object.__new__(ty)`: an instance whose `__init__` has not run.
fn new_instance<'py>(py: Python<'py>, ty: &Py<PyType>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `object.__new__(ty)` is `object`'s tp_new called with empty arguments (that
    // is what the `object.__new__` wrapper does after checking `ty` derives from object,
    // which every class does); it returns a new reference or NULL with an exception set.
    unsafe {
        let base = std::ptr::addr_of_mut!(ffi::PyBaseObject_Type);
        let tp_new = (*base).tp_new.expect("object has tp_new");
        let args = ffi::PyTuple_New(0);
        if args.is_null() {
            return Err(PyErr::fetch(py));
        }
        let obj = tp_new(
            ty.as_ptr().cast::<ffi::PyTypeObject>(),
            args,
            std::ptr::null_mut(),
        );
        ffi::Py_DECREF(args);
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// Sets plain instance attributes on an instance whose `__init__` has not run, in order.
/// None of these names is a descriptor on the ASE classes (the equivalence tests pin the
/// attribute set), so this stores what the Python path's `__dict__` assignment stores;
/// CPython keeps them inline in the instance (no separate dict object for the GC to track).
fn set_attrs<'py>(
    obj: &Bound<'py, PyAny>,
    attrs: &[(&Py<PyString>, &Bound<'py, PyAny>)],
) -> PyResult<()> {
    let py = obj.py();
    for (name, value) in attrs {
        obj.setattr(name.bind(py), value)?;
    }
    Ok(())
}

/// `Cell` with `.array = array`, without `Cell.__init__` (untracked: see the module docs).
fn new_cell<'py>(
    py: Python<'py>,
    api: &Api,
    array: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let cell = new_instance(py, &api.cell)?;
    cell.setattr(api.n.array.bind(py), array)?;
    untrack(api, &cell);
    Ok(cell)
}

/// Takes `obj` off the cyclic GC's lists (module docs), when `api.untrack` says so.
fn untrack(api: &Api, obj: &Bound<'_, PyAny>) {
    if !api.untrack {
        return;
    }
    let p = obj.as_ptr();
    // SAFETY: `p` is a live object (the caller holds a reference, with the GIL). Only an
    // object of a GC type has the header `PyObject_GC_UnTrack` touches, and it is only
    // called on one that is tracked now, as CPython's own untracking does.
    unsafe {
        if ffi::PyType_IS_GC(ffi::Py_TYPE(p)) != 0 && ffi::PyObject_GC_IsTracked(p) == 1 {
            ffi::PyObject_GC_UnTrack(p.cast());
        }
    }
}

// ------------------------------------------------------------------------------------
// The builder
// ------------------------------------------------------------------------------------

/// What the fast path collected from a row, before the objects are assembled.
struct Parts<'py> {
    cell: Bound<'py, PyAny>,
    pbc: Bound<'py, PyAny>,
    arrays: Bound<'py, PyDict>,
    celldisp: Bound<'py, PyAny>,
    constraints: Bound<'py, PyAny>,
    info: Bound<'py, PyDict>,
}

/// An `ase.Atoms` from one stored row (keys UTF-8, values msgpack-numpy), equal to what
/// `dict_to_atoms(decoded_row, copy=False)` returns.
pub fn build<'py>(py: Python<'py>, fields: &[Field<'_>]) -> PyResult<Bound<'py, PyAny>> {
    let api = api(py)?;
    match fast(py, api, fields)? {
        Some(atoms) => Ok(atoms),
        None => fallback(py, api, fields),
    }
}

/// The Python `dict_to_atoms(row, copy=False)` on the decoded row.
fn fallback<'py>(py: Python<'py>, api: &Api, fields: &[Field<'_>]) -> PyResult<Bound<'py, PyAny>> {
    let row = codec::decode_row(py, fields.iter().copied())?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(api.n.copy.bind(py), false)?;
    api.dict_to_atoms.bind(py).call((row,), Some(&kwargs))
}

/// A field's key must be UTF-8 (as when the row is decoded into a dict).
fn check_key(py: Python<'_>, key: &[u8]) -> PyResult<()> {
    if std::str::from_utf8(key).is_err() {
        codec::key_str(py, key)?; // raises the decoder's error
    }
    Ok(())
}

/// The fast path, or `None` where `_fast_dict_to_atoms` returns `None`.
fn fast<'py>(
    py: Python<'py>,
    api: &Api,
    fields: &[Field<'_>],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut numbers: Option<Bound<'py, PyAny>> = None;
    let mut positions: Option<Bound<'py, PyAny>> = None;
    let mut cell: Option<Bound<'py, PyAny>> = None;
    let mut pbc: Option<Bound<'py, PyAny>> = None;
    let mut constraint_dicts: Option<Bound<'py, PyAny>> = None;
    let mut custom: Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)> = Vec::new();
    let info = PyDict::new(py);
    let mut results: Option<Bound<'py, PyDict>> = None;

    for &(key, stored) in fields {
        check_key(py, key)?;
        let value = codec::decode_field(py, key, stored)?;
        if let Some(name) = key.strip_prefix(b"arrays.") {
            let Some(arr) = exact_array(py, &value) else {
                return Ok(None);
            };
            let dims = shape(arr);
            match name {
                b"numbers" => {
                    if !has_dtype(py, arr, &api.int64) || dims.len() != 1 {
                        return Ok(None);
                    }
                    numbers = Some(owned(py, value)?);
                }
                b"positions" => {
                    if !has_dtype(py, arr, &api.float64) || dims.len() != 2 || dims[1] != 3 {
                        return Ok(None);
                    }
                    positions = Some(owned(py, value)?);
                }
                _ => {
                    if dims.is_empty() {
                        return Ok(None);
                    }
                    custom.push((codec::key_str(py, name)?, owned(py, value)?));
                }
            }
        } else if let Some(name) = key.strip_prefix(b"info.") {
            info.set_item(codec::key_str(py, name)?, value)?;
        } else if let Some(name) = key.strip_prefix(b"calc.") {
            let results = match &results {
                Some(r) => r,
                None => results.insert(PyDict::new(py)),
            };
            results.set_item(codec::key_str(py, name)?, value)?;
        } else {
            match key {
                b"cell" => {
                    let Some(arr) = exact_array(py, &value) else {
                        return Ok(None);
                    };
                    if !has_dtype(py, arr, &api.float64) || shape(arr) != [3, 3] {
                        return Ok(None);
                    }
                    cell = Some(owned(py, value)?);
                }
                b"pbc" => {
                    let Some(arr) = exact_array(py, &value) else {
                        return Ok(None);
                    };
                    if !has_dtype(py, arr, &api.bool_) || shape(arr) != [3] {
                        return Ok(None);
                    }
                    pbc = Some(owned(py, value)?);
                }
                b"constraints" => constraint_dicts = Some(value),
                _ => {}
            }
        }
    }

    let numbers = match numbers {
        Some(a) => a,
        // A partial row (`get(i, keys=["arrays.positions"])`, a column view): atoms of
        // unknown element (0, ASE's "X"), as many as its per-atom arrays have.
        None => {
            let n = positions
                .as_ref()
                .or_else(|| custom.first().map(|(_, a)| a))
                .map_or(0, dim0);
            zeros(py, &[n], &api.int64)?
        }
    };
    let n = dim0(&numbers);
    let positions = match positions {
        Some(p) if dim0(&p) != n => return Ok(None),
        Some(p) => p,
        None => zeros(py, &[n, 3], &api.float64)?,
    };
    if custom.iter().any(|(_, a)| dim0(a) != n) {
        return Ok(None);
    }

    let arrays = PyDict::new(py);
    arrays.set_item(api.n.numbers.bind(py), numbers)?;
    arrays.set_item(api.n.positions.bind(py), positions)?;
    for (name, a) in custom {
        arrays.set_item(name, a)?;
    }
    let constraints = match constraint_dicts {
        Some(dicts) => api.constraints_from.bind(py).call1((dicts,))?,
        None => PyList::empty(py).into_any(),
    };
    let parts = Parts {
        cell: match cell {
            Some(c) => c,
            None => zeros(py, &[3, 3], &api.float64)?,
        },
        pbc: match pbc {
            Some(p) => p,
            None => zeros(py, &[3], &api.bool_)?,
        },
        arrays,
        celldisp: zeros(py, &[3, 1], &api.float64)?,
        constraints,
        info,
    };
    let atoms = assemble(py, api, &parts)?;
    if let Some(results) = results {
        atoms.setattr(api.n.calc.bind(py), make_calc(py, api, &parts, results)?)?;
    }
    Ok(Some(atoms))
}

/// An `Atoms` without a calculator holding `parts` (the attributes `Atoms.__init__` sets,
/// in its order).
fn assemble<'py>(py: Python<'py>, api: &Api, parts: &Parts<'py>) -> PyResult<Bound<'py, PyAny>> {
    let n = &api.n;
    let atoms = new_instance(py, &api.atoms)?;
    set_attrs(
        &atoms,
        &[
            (&n.cellobj, &new_cell(py, api, &parts.cell)?),
            (&n.pbc, &parts.pbc),
            (&n.arrays, parts.arrays.as_any()),
            (&n.celldisp, &parts.celldisp),
            (&n.constraints, &parts.constraints),
            (&n.info, parts.info.as_any()),
            (&n.calc, &py.None().into_bound(py)),
        ],
    )?;
    Ok(atoms)
}

/// `_snapshot`: what `atoms.copy()` gives, without the public constructor (arrays, cell,
/// pbc and celldisp copied, constraints copied, info a shallow copy, no calculator).
fn snapshot<'py>(py: Python<'py>, api: &Api, parts: &Parts<'py>) -> PyResult<Bound<'py, PyAny>> {
    let arrays = PyDict::new(py);
    for (name, a) in parts.arrays.iter() {
        arrays.set_item(name, copy_array(py, &a)?)?;
    }
    let constraints = PyList::empty(py);
    for c in parts.constraints.try_iter()? {
        constraints.append(c?.call_method0(api.n.copy.bind(py))?)?;
    }
    let copy = Parts {
        cell: copy_array(py, &parts.cell)?,
        pbc: copy_array(py, &parts.pbc)?,
        arrays,
        celldisp: copy_array(py, &parts.celldisp)?,
        constraints: constraints.into_any(),
        info: parts.info.copy()?,
    };
    let atoms = assemble(py, api, &copy)?;
    untrack(api, &copy.constraints);
    untrack(api, &atoms);
    Ok(atoms)
}

/// `_make_calc`: a `SinglePointCalculator` as `SinglePointCalculator(atoms)` builds it,
/// holding `results`, whose `.atoms` is an independent snapshot, and (no reference cycle)
/// an unbound `get_spin_polarized`.
fn make_calc<'py>(
    py: Python<'py>,
    api: &Api,
    parts: &Parts<'py>,
    results: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = &api.n;
    let calc = new_instance(py, &api.spc)?;
    let parameters = api.parameters.bind(py).call0()?;
    untrack(api, &parameters);
    set_attrs(
        &calc,
        &[
            (&n.atoms, &snapshot(py, api, parts)?),
            (&n.results, results.as_any()),
            (&n.parameters, &parameters),
            (&n.directory, n.dot.bind(py).as_any()),
            (&n.prefix, &py.None().into_bound(py)),
            (&n.use_cache, &PyBool::new(py, false).to_owned().into_any()),
            (&n.get_spin_polarized, api.get_spin_polarized.bind(py)),
        ],
    )?;
    Ok(calc)
}
