//! The ASE and `asebytes._convert` objects the native Atoms code uses in both directions
//! ([`crate::atoms`] builds `Atoms` on read, [`crate::atoms_row`] encodes them on write),
//! looked up once per process, with the attribute names they touch interned.

use numpy::PyArrayDescr;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

/// Attribute and keyword names, interned once (dict lookups then compare pointers).
pub(crate) struct Names {
    pub dict: Py<PyString>,
    pub cellobj: Py<PyString>,
    pub pbc: Py<PyString>,
    pub arrays: Py<PyString>,
    pub celldisp: Py<PyString>,
    pub constraints: Py<PyString>,
    pub info: Py<PyString>,
    pub calc: Py<PyString>,
    pub array: Py<PyString>,
    pub numbers: Py<PyString>,
    pub positions: Py<PyString>,
    pub atoms: Py<PyString>,
    pub results: Py<PyString>,
    pub parameters: Py<PyString>,
    pub directory: Py<PyString>,
    pub dot: Py<PyString>,
    pub prefix: Py<PyString>,
    pub use_cache: Py<PyString>,
    pub get_spin_polarized: Py<PyString>,
    pub copy: Py<PyString>,
}

/// The Python objects both directions need, looked up once per process.
pub(crate) struct Api {
    pub atoms: Py<PyType>,
    pub cell: Py<PyType>,
    pub spc: Py<PyType>,
    pub parameters: Py<PyType>,
    pub dict_to_atoms: Py<PyAny>,
    pub constraints_from: Py<PyAny>,
    pub atoms_to_dict: Py<PyAny>,
    pub constraint_dicts: Py<PyAny>,
    /// `_convert._GET_SPIN_POLARIZED`: every calculator's `get_spin_polarized`, unbound
    /// so that a calculator is no reference cycle.
    pub get_spin_polarized: Py<PyAny>,
    pub int64: Py<PyArrayDescr>,
    pub float64: Py<PyArrayDescr>,
    pub bool_: Py<PyArrayDescr>,
    /// Whether built `Atoms` leave their cycle-free parts out of the cyclic GC
    /// ([`crate::atoms`]); `ASEBYTES_GC_UNTRACK=0` turns it off.
    pub untrack: bool,
    pub n: Names,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

pub(crate) fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let s = |name: &str| PyString::intern(py, name).unbind();
        let ty = |module: &str, name: &str| -> PyResult<Py<PyType>> {
            Ok(py
                .import(module)?
                .getattr(name)?
                .cast_into::<PyType>()?
                .unbind())
        };
        let np_dtype = py.import("numpy")?.getattr("dtype")?;
        let dtype = |name: &str| -> PyResult<Py<PyArrayDescr>> {
            Ok(np_dtype
                .call1((name,))?
                .cast_into::<PyArrayDescr>()?
                .unbind())
        };
        let convert = py.import("asebytes._convert")?;
        Ok(Api {
            atoms: ty("ase", "Atoms")?,
            cell: ty("ase.cell", "Cell")?,
            spc: ty("ase.calculators.singlepoint", "SinglePointCalculator")?,
            parameters: ty("ase.calculators.calculator", "Parameters")?,
            dict_to_atoms: convert.getattr("dict_to_atoms")?.unbind(),
            constraints_from: convert.getattr("_constraints_from")?.unbind(),
            atoms_to_dict: convert.getattr("_atoms_to_dict")?.unbind(),
            constraint_dicts: convert.getattr("_constraint_dicts")?.unbind(),
            get_spin_polarized: convert.getattr("_GET_SPIN_POLARIZED")?.unbind(),
            int64: dtype("int64")?,
            float64: dtype("float64")?,
            bool_: dtype("bool")?,
            untrack: std::env::var("ASEBYTES_GC_UNTRACK").map_or(true, |v| v != "0"),
            n: Names {
                dict: s("__dict__"),
                cellobj: s("_cellobj"),
                pbc: s("_pbc"),
                arrays: s("arrays"),
                celldisp: s("_celldisp"),
                constraints: s("_constraints"),
                info: s("info"),
                calc: s("_calc"),
                array: s("array"),
                numbers: s("numbers"),
                positions: s("positions"),
                atoms: s("atoms"),
                results: s("results"),
                parameters: s("parameters"),
                directory: s("_directory"),
                dot: s("."),
                prefix: s("prefix"),
                use_cache: s("use_cache"),
                get_spin_polarized: s("get_spin_polarized"),
                copy: s("copy"),
            },
        })
    })
}
