//! Tests of the H5MD backend through the backend traits: the tree it writes (read back
//! with HDF5 directly), variable atom counts, files without our metadata, connectivity,
//! constraints, name clashes, and batches that fail leaving nothing behind.

use asebytes_protocol::codec::{self, NdArray, Value};
use asebytes_protocol::{Key, Row};
use serde_bytes::ByteBuf;
use tempfile::TempDir;

use super::*;
use crate::backend::hdf5::dataset::Column;
use crate::backend::hdf5::file::{self, H5File};
use crate::backend::{Backend, ErrorKind};

fn k(s: &str) -> Key {
    ByteBuf::from(s.as_bytes().to_vec())
}

fn row(fields: &[(&str, Value)]) -> Row {
    fields
        .iter()
        .map(|(key, v)| (k(key), ByteBuf::from(codec::encode(v).unwrap())))
        .collect()
}

fn f64s(shape: &[u64], start: f64) -> Value {
    let n: u64 = shape.iter().product();
    let items: Vec<f64> = (0..n).map(|i| start + i as f64).collect();
    Value::Array(NdArray::from_f64s(shape.to_vec(), &items).unwrap())
}

fn i64s(items: &[i64]) -> Value {
    Value::Array(NdArray::from_elements(vec![items.len() as u64], items).unwrap())
}

fn frame(n: u64, e: f64) -> Row {
    row(&[
        ("arrays.numbers", i64s(&vec![6; n as usize])),
        ("arrays.positions", f64s(&[n, 3], e)),
        ("cell", f64s(&[3, 3], 0.0)),
        (
            "pbc",
            Value::Array(NdArray::from_elements(vec![3], &[true, false, true]).unwrap()),
        ),
        ("calc.energy", Value::Float(e)),
        ("calc.forces", f64s(&[n, 3], -e)),
        ("info.step", Value::Int(e as i64)),
        ("info.label", Value::Str(format!("f{e}"))),
    ])
}

fn store(dir: &TempDir, group: &str, readonly: bool) -> Box<dyn Backend> {
    let opts = OpenOptions {
        path: dir.path().join("t.h5md").to_string_lossy().into_owned(),
        group: group.into(),
        readonly,
        ..Default::default()
    };
    Box::new(H5mdBackend::open(&opts).unwrap())
}

fn extend(b: &mut Box<dyn Backend>, rows: Vec<Option<Row>>) -> crate::backend::Result<()> {
    let mut rows = Some(rows);
    b.write(&mut |w| w.extend(rows.take().unwrap_or_default()).map(drop))
}

fn get(b: &dyn Backend, i: u64) -> Vec<(String, Value)> {
    let r = b.reader();
    let snap = r.snapshot().unwrap();
    snap.get(i, None)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.to_vec()).unwrap(),
                codec::decode(&v).unwrap(),
            )
        })
        .collect()
}

fn field<'a>(r: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn the_tree_is_the_references_with_units_origins_and_float_species() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(2, 1.0)), Some(frame(3, 2.0))]).unwrap();
    b.close().unwrap();
    drop(b);
    let f = H5File::open(&d.path().join("t.h5md"), true).unwrap();
    let root = f.root();
    for p in [
        "h5md",
        "particles/atoms/position/value",
        "particles/atoms/position/step",
        "particles/atoms/position/time",
        "particles/atoms/species/value",
        "particles/atoms/force/value",
        "particles/atoms/box/edges/value",
        "particles/atoms/box/pbc/value",
        "observables/atoms/potential_energy/value",
        "observables/atoms/step/value",
        "observables/atoms/label/value",
        "asebytes/atoms/_n_atoms",
    ] {
        assert!(tree::exists(&root, p), "{p} missing");
    }
    let species = Column::open(&root, "particles/atoms/species/value").unwrap();
    assert_eq!(species.elem(), crate::backend::columnar::engine::DType::F64);
    assert_eq!(species.shape(), vec![2, 3]);
    let raw = species.read_raw(&[0, 0], &[1, 3]).unwrap();
    let third = f64::from_le_bytes(raw[16..24].try_into().unwrap());
    assert!(third.is_nan(), "padding is NaN, as znh5md reads it");
    let force = root.group("particles/atoms/force").unwrap();
    assert_eq!(
        file::read_str_attr(&force, names::ORIGIN_ATTR)
            .unwrap()
            .as_deref(),
        Some("calc")
    );
    let e = root
        .dataset("observables/atoms/potential_energy/value")
        .unwrap();
    let unit: hdf5::types::VarLenUnicode = e.attr("unit").unwrap().read_scalar().unwrap();
    assert_eq!(unit.as_str(), "eV");
    let meta = root.group("asebytes/atoms").unwrap();
    let cols = file::read_str_list_attr(&meta, "columns").unwrap().unwrap();
    assert!(cols.contains(&"calc.energy".to_string()), "{cols:?}");
    let bx = root.group("particles/atoms/box").unwrap();
    assert_eq!(
        file::read_str_list_attr(&bx, "boundary").unwrap().unwrap(),
        ["periodic", "none", "periodic"]
    );
}

#[test]
fn variable_atom_counts_and_ints_read_back_with_their_types() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(2, 1.0)), Some(frame(4, 2.0))]).unwrap();
    extend(&mut b, vec![Some(frame(1, 3.0))]).unwrap();
    drop(b);
    let b = store(&d, "atoms", true);
    let r1 = get(&*b, 1);
    assert_eq!(field(&r1, "arrays.numbers"), Some(&i64s(&[6, 6, 6, 6])));
    assert_eq!(field(&r1, "info.step"), Some(&Value::Int(2)));
    assert_eq!(field(&r1, "calc.energy"), Some(&Value::Float(2.0)));
    let r2 = get(&*b, 2);
    assert_eq!(field(&r2, "arrays.positions"), Some(&f64s(&[1, 3], 3.0)));
}

#[test]
fn a_file_without_our_metadata_reads_from_its_tree() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(2, 1.0)), Some(frame(3, 2.0))]).unwrap();
    drop(b);
    {
        // What znh5md leaves: no /asebytes.
        let f = H5File::open(&d.path().join("t.h5md"), false).unwrap();
        f.root().unlink("asebytes").unwrap();
    }
    let mut b = store(&d, "atoms", false);
    let r0 = get(&*b, 0);
    assert_eq!(field(&r0, "arrays.numbers"), Some(&i64s(&[6, 6])));
    assert_eq!(field(&r0, "calc.forces"), Some(&f64s(&[2, 3], -1.0)));
    // Appending stores the derived atom counts of the old frames too.
    extend(&mut b, vec![Some(frame(1, 3.0))]).unwrap();
    drop(b);
    let b = store(&d, "atoms", true);
    assert_eq!(
        field(&get(&*b, 1), "arrays.numbers"),
        Some(&i64s(&[6, 6, 6]))
    );
    assert_eq!(field(&get(&*b, 2), "arrays.numbers"), Some(&i64s(&[6])));
}

#[test]
fn connectivity_and_constraints_take_their_h5md_places() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    let conn = Value::List(vec![
        Value::List(vec![Value::Int(0), Value::Int(1)]),
        Value::List(vec![Value::Int(1), Value::Int(2), Value::Float(1.5)]),
    ]);
    let cons = Value::List(vec![Value::Map(vec![
        ("name".into(), Value::Str("FixAtoms".into())),
        (
            "kwargs".into(),
            Value::Map(vec![("indices".into(), Value::List(vec![Value::Int(0)]))]),
        ),
    ])]);
    let mut r = frame(3, 1.0);
    r.extend(row(&[
        ("info.connectivity", conn.clone()),
        ("constraints", cons.clone()),
    ]));
    extend(&mut b, vec![Some(r), Some(frame(2, 2.0))]).unwrap();
    drop(b);
    let b = store(&d, "atoms", true);
    let r0 = get(&*b, 0);
    assert_eq!(
        field(&r0, "info.connectivity"),
        Some(&Value::List(vec![
            Value::List(vec![Value::Int(0), Value::Int(1)]),
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Float(1.5)]),
        ]))
    );
    assert_eq!(field(&r0, "constraints"), Some(&cons));
    let r1 = get(&*b, 1);
    assert_eq!(field(&r1, "info.connectivity"), None);
    assert_eq!(field(&r1, "constraints"), None);
    drop(b);
    let f = H5File::open(&d.path().join("t.h5md"), true).unwrap();
    let root = f.root();
    assert!(tree::exists(&root, "connectivity/atoms/bonds/value"));
    assert!(tree::exists(&root, "connectivity/atoms/bond_orders/value"));
    assert!(tree::exists(
        &root,
        "observables/atoms/constraints_json/value"
    ));
}

#[test]
fn info_and_calc_of_one_name_get_two_places() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    let mut r = frame(2, 1.0);
    r.extend(row(&[
        ("info.stress", Value::Float(1.0)),
        ("calc.stress", f64s(&[6], 5.0)),
    ]));
    extend(&mut b, vec![Some(r)]).unwrap();
    drop(b);
    let b = store(&d, "atoms", true);
    let r0 = get(&*b, 0);
    assert_eq!(field(&r0, "info.stress"), Some(&Value::Float(1.0)));
    assert_eq!(field(&r0, "calc.stress"), Some(&f64s(&[6], 5.0)));
}

#[test]
fn a_failed_batch_leaves_the_file_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(2, 1.0))]).unwrap();
    let bad = row(&[("info.connectivity", Value::List(vec![Value::Int(3)]))]);
    let mut good = frame(5, 2.0);
    good.extend(row(&[("info.new", Value::Float(1.0))]));
    let e = extend(&mut b, vec![Some(good), Some(bad)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 1);
    drop(b);
    let b = store(&d, "atoms", true);
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 1);
    assert_eq!(field(&get(&*b, 0), "info.new"), None);
    let f = H5File::open(&d.path().join("t.h5md"), true).unwrap();
    let species = Column::open(&f.root(), "particles/atoms/species/value").unwrap();
    assert_eq!(species.shape(), vec![1, 2]);
}

#[test]
fn groups_default_and_list_and_h5_files_are_sniffed() {
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "solvent", false);
    extend(&mut b, vec![Some(frame(2, 1.0))]).unwrap();
    drop(b);
    let mut b = store(&d, "solute", false);
    extend(&mut b, vec![Some(frame(1, 1.0))]).unwrap();
    drop(b);
    let p = d.path().join("t.h5md");
    assert_eq!(
        list_groups(p.to_str().unwrap()).unwrap(),
        ["solute", "solvent"]
    );
    assert_eq!(default_group(p.to_str().unwrap()), "solute");
    assert!(sniff(&p));
    let h5 = d.path().join("plain.h5");
    std::fs::write(&h5, b"not hdf5").unwrap();
    assert!(!sniff(&h5));
    assert_eq!(
        default_group(d.path().join("new.h5md").to_str().unwrap()),
        "atoms"
    );
}

#[test]
fn float_pbc_of_a_znh5md_file_stays_whole_on_small_frames() {
    use crate::backend::columnar::engine::DType;
    use crate::backend::hdf5::dataset::{Compression, CreateSpec};
    let d = tempfile::tempdir().unwrap();
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(1, 1.0))]).unwrap();
    drop(b);
    {
        // znh5md writes pbc as float64 and no /asebytes.
        let f = H5File::open(&d.path().join("t.h5md"), false).unwrap();
        let root = f.root();
        root.unlink("asebytes").unwrap();
        root.unlink("particles/atoms/box/pbc/value").unwrap();
        let spec = CreateSpec {
            elem: DType::F64,
            shape: vec![1, 3],
            chunk: vec![64, 3],
            compression: Compression::None,
        };
        let c = Column::create(&root, "particles/atoms/box/pbc/value", &spec).unwrap();
        let v: Vec<u8> = [1.0_f64, 0.0, 1.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        c.write_raw(&[0, 0], &[1, 3], &v).unwrap();
    }
    let mut b = store(&d, "atoms", false);
    extend(&mut b, vec![Some(frame(1, 2.0))]).unwrap();
    let pbc = Value::Array(NdArray::from_elements(vec![3], &[true, false, true]).unwrap());
    assert_eq!(field(&get(&*b, 0), "pbc"), Some(&pbc));
    assert_eq!(field(&get(&*b, 1), "pbc"), Some(&pbc));
}
