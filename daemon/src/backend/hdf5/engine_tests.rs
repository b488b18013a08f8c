//! Tests of the HDF5 engine's transaction contract: staged writes visible to the writer,
//! commit, rollback of creations, resizes, overwrites and deletions, crash leftovers.

use serde_json::{Map, Value as Json, json};

use super::config::Hdf5Config;
use super::engine::{ARRAYS_ATTR, Hdf5Engine, TRASH_PREFIX};
use super::file::{self, H5File};
use crate::backend::ErrorKind;
use crate::backend::columnar::engine::{ArraySpec, DType, Engine, EngineRead, Slab};

fn open(p: &std::path::Path) -> Hdf5Engine {
    Hdf5Engine::open(p, "default", false, Hdf5Config::default()).unwrap()
}

fn attrs(n: u64, cols: &[&str]) -> Map<String, Json> {
    json!({"n_frames": n, "columns": cols, "per_atom_columns": [], "asebytes_version": "x"})
        .as_object()
        .unwrap()
        .clone()
}

fn f64s(xs: &[f64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn spec(dtype: DType, n: u64) -> ArraySpec {
    ArraySpec {
        dtype,
        shape: vec![n],
        chunks: vec![64],
    }
}

fn energy(e: &dyn EngineRead, n: u64) -> Vec<u8> {
    e.read_slab(
        "calc.energy",
        Slab {
            start: &[0],
            count: &[n],
        },
    )
    .unwrap()
}

#[test]
fn a_missing_group_reads_as_none_until_the_first_commit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    let ro = Hdf5Engine::open(&p, "default", true, Hdf5Config::default()).unwrap();
    assert_eq!(ro.read_attrs().unwrap(), None);
    assert_eq!(ro.list_arrays().unwrap(), Vec::<String>::new());
    let e = open(&p);
    assert_eq!(e.read_attrs().unwrap(), None);
    e.create_array("calc.energy", &spec(DType::F64, 2)).unwrap();
    e.write_slab(
        "calc.energy",
        Slab {
            start: &[0],
            count: &[2],
        },
        &f64s(&[1.0, 2.0]),
    )
    .unwrap();
    assert_eq!(energy(&e, 2), f64s(&[1.0, 2.0]));
    e.commit(&attrs(2, &["calc.energy"])).unwrap();
    assert_eq!(e.read_attrs().unwrap().unwrap()["n_frames"], json!(2));
    drop(e);
    let again = open(&p);
    assert_eq!(again.list_arrays().unwrap(), vec!["calc.energy"]);
    assert_eq!(energy(&again, 2), f64s(&[1.0, 2.0]));
    let meta = again.array_meta("calc.energy").unwrap().unwrap();
    assert_eq!(
        (meta.dtype, meta.shape, meta.chunks),
        (DType::F64, vec![2], vec![64])
    );
    assert_eq!(again.array_meta("nope").unwrap(), None);
}

#[test]
fn rollback_undoes_appends_overwrites_new_arrays_and_deletions() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    let e = open(&p);
    e.create_array("calc.energy", &spec(DType::F64, 2)).unwrap();
    e.write_slab(
        "calc.energy",
        Slab {
            start: &[0],
            count: &[2],
        },
        &f64s(&[1.0, 2.0]),
    )
    .unwrap();
    e.create_array("info.label", &spec(DType::Str, 2)).unwrap();
    e.write_strings("info.label", 0, &["\"a\"".into(), "\"b\"".into()])
        .unwrap();
    e.commit(&attrs(2, &["calc.energy", "info.label"])).unwrap();

    e.resize("calc.energy", &[3]).unwrap();
    e.write_slab(
        "calc.energy",
        Slab {
            start: &[1],
            count: &[2],
        },
        &f64s(&[9.0, 3.0]),
    )
    .unwrap();
    e.write_strings("info.label", 1, &["\"z\"".into()]).unwrap();
    e.create_array("calc.forces", &spec(DType::F32, 3)).unwrap();
    e.delete_array("info.label").unwrap();
    assert!(!e.list_arrays().unwrap().contains(&"info.label".to_string()));
    e.create_array("info.label", &spec(DType::I64, 3)).unwrap();
    e.rollback().unwrap();

    let mut names = e.list_arrays().unwrap();
    names.sort();
    assert_eq!(names, vec!["calc.energy", "info.label"]);
    assert_eq!(e.array_meta("calc.energy").unwrap().unwrap().shape, vec![2]);
    assert_eq!(energy(&e, 2), f64s(&[1.0, 2.0]));
    assert_eq!(
        e.read_strings("info.label", 0, 2).unwrap(),
        vec!["\"a\"", "\"b\""]
    );
    assert_eq!(e.read_attrs().unwrap().unwrap()["n_frames"], json!(2));
}

#[test]
fn a_shrink_is_undone_with_the_cut_values() {
    let d = tempfile::tempdir().unwrap();
    let e = open(&d.path().join("t.h5"));
    let s = ArraySpec {
        dtype: DType::I32,
        shape: vec![2, 3],
        chunks: vec![1, 3],
    };
    e.create_array("x", &s).unwrap();
    let data: Vec<u8> = (1..=6i32).flat_map(|x| x.to_le_bytes()).collect();
    e.write_slab(
        "x",
        Slab {
            start: &[0, 0],
            count: &[2, 3],
        },
        &data,
    )
    .unwrap();
    e.commit(&attrs(2, &["x"])).unwrap();
    e.resize("x", &[1, 2]).unwrap();
    e.resize("x", &[2, 4]).unwrap();
    e.rollback().unwrap();
    assert_eq!(
        e.read_slab(
            "x",
            Slab {
                start: &[0, 0],
                count: &[2, 3]
            }
        )
        .unwrap(),
        data
    );
}

#[test]
fn a_committed_deletion_is_gone_and_a_new_group_rolled_back_is_absent() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    let e = open(&p);
    e.create_array("a", &spec(DType::U8, 1)).unwrap();
    e.rollback().unwrap();
    assert_eq!(e.read_attrs().unwrap(), None);
    e.create_array("a", &spec(DType::U8, 1)).unwrap();
    e.create_array("b", &spec(DType::Bool, 1)).unwrap();
    e.commit(&attrs(1, &["a", "b"])).unwrap();
    e.delete_array("a").unwrap();
    e.commit(&attrs(1, &["b"])).unwrap();
    drop(e);
    let f = H5File::open(&p, true).unwrap();
    let g = f.group("default", false).unwrap().unwrap();
    assert_eq!(file::dataset_names(&g).unwrap(), vec!["b"]);
    assert_eq!(
        file::read_str_list_attr(&g, ARRAYS_ATTR).unwrap(),
        Some(vec!["b".to_string()])
    );
}

#[test]
fn reopening_after_a_crash_drops_uncommitted_arrays_and_restores_deletions() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    {
        let e = open(&p);
        e.create_array("kept", &spec(DType::F64, 1)).unwrap();
        e.commit(&attrs(1, &["kept"])).unwrap();
        e.delete_array("kept").unwrap();
        e.create_array("orphan", &spec(DType::F64, 1)).unwrap();
        // Dropped without commit or rollback: what a kill leaves (the data was flushed).
        std::mem::forget(e);
    }
    let e = open(&p);
    assert_eq!(e.list_arrays().unwrap(), vec!["kept"]);
    e.create_array("orphan", &spec(DType::I8, 1)).unwrap();
    e.commit(&attrs(1, &["kept", "orphan"])).unwrap();
    let mut names = e.list_arrays().unwrap();
    names.sort();
    assert_eq!(names, vec!["kept", "orphan"]);
    assert!(names.iter().all(|n| !n.starts_with(TRASH_PREFIX)));
}

#[test]
fn read_only_engines_refuse_writes_and_bad_names_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    open(&p).commit(&attrs(0, &[])).unwrap();
    let ro = Hdf5Engine::open(&p, "default", true, Hdf5Config::default()).unwrap();
    let e = ro.create_array("a", &spec(DType::F64, 1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReadOnly);
    assert_eq!(ro.read_attrs().unwrap().unwrap()["n_frames"], json!(0));
    // A file open read-only in this process cannot be opened for writing as well.
    assert_eq!(
        Hdf5Engine::open(&p, "default", false, Hdf5Config::default())
            .unwrap_err()
            .kind,
        ErrorKind::Unavailable
    );
    drop(ro);
    let rw = open(&p);
    let e = rw.create_array("a/b", &spec(DType::F64, 1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    rw.create_array("a", &spec(DType::F64, 1)).unwrap();
    let e = rw.create_array("a", &spec(DType::F64, 1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    let e = Hdf5Engine::open(&p, "a/b", false, Hdf5Config::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn remove_group_deletes_the_group_only() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    let e = open(&p);
    e.create_array("a", &spec(DType::F64, 1)).unwrap();
    e.commit(&attrs(1, &["a"])).unwrap();
    let other = Hdf5Engine::open(&p, "train", false, Hdf5Config::default());
    // One process may hold the file once per open; the second open of the same file in
    // this process shares HDF5's file object.
    if let Ok(o) = other {
        o.create_array("b", &spec(DType::F64, 1)).unwrap();
        o.commit(&attrs(1, &["b"])).unwrap();
    }
    e.remove_group().unwrap();
    assert_eq!(e.read_attrs().unwrap(), None);
    assert!(
        !file::list_groups(&p)
            .unwrap()
            .contains(&"default".to_string())
    );
}

#[test]
fn groups_are_listed_while_a_store_of_the_file_is_open_for_writing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    let e = open(&p);
    e.create_array("a", &spec(DType::F64, 1)).unwrap();
    e.commit(&attrs(1, &["a"])).unwrap();
    assert_eq!(file::list_groups(&p).unwrap(), vec!["default"]);
    e.create_array("b", &spec(DType::F64, 1)).unwrap();
    e.commit(&attrs(1, &["a", "b"])).unwrap();
}
