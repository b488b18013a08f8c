//! Tests of the low-level HDF5 pieces: files, groups, attributes as h5py writes them,
//! column datasets of every element type, hyperslab reads and writes.

use super::dataset::{Column, Compression, CreateSpec};
use super::file::{self, H5File};
use crate::backend::ErrorKind;
use crate::backend::columnar::engine::DType;

/// Every element type but strings.
fn numeric() -> impl Iterator<Item = DType> {
    DType::ALL.into_iter().filter(|d| *d != DType::Str)
}

fn tmp() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.h5");
    (d, p)
}

fn spec(elem: DType, shape: &[usize], chunk: &[usize]) -> CreateSpec {
    CreateSpec {
        elem,
        shape: shape.to_vec(),
        chunk: chunk.to_vec(),
        compression: Compression::Gzip(4),
    }
}

/// Little-endian bytes of `n` distinct items of `elem` (bools alternate).
fn sample(elem: DType, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        match elem {
            DType::Bool => out.push((i % 2) as u8),
            DType::I8 | DType::U8 => out.push(i as u8 + 1),
            DType::I16 | DType::U16 => out.extend((i as u16 + 1).to_le_bytes()),
            DType::I32 | DType::U32 => out.extend((i as u32 + 1).to_le_bytes()),
            DType::I64 | DType::U64 => out.extend((i as u64 + 1).to_le_bytes()),
            DType::F32 => out.extend((i as f32 + 0.5).to_le_bytes()),
            DType::F64 => out.extend((i as f64 + 0.5).to_le_bytes()),
            DType::C64 => {
                out.extend((i as f32).to_le_bytes());
                out.extend((-(i as f32)).to_le_bytes());
            }
            DType::C128 => {
                out.extend((i as f64).to_le_bytes());
                out.extend((-(i as f64)).to_le_bytes());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_numeric_type_round_trips_through_a_hyperslab() {
    let (_d, p) = tmp();
    let f = H5File::open(&p, false).unwrap();
    let g = f.group("default", true).unwrap().unwrap();
    for elem in numeric() {
        let name = format!("col.{}", elem.numpy_str());
        let c = Column::create(&g, &name, &spec(elem, &[0, 3], &[64, 3])).unwrap();
        c.resize(&[4, 3]).unwrap();
        let data = sample(elem, 12);
        c.write_raw(&[0, 0], &[4, 3], &data).unwrap();
        assert_eq!(c.read_raw(&[0, 0], &[4, 3]).unwrap(), data, "{elem:?}");
        let isz = elem.itemsize();
        assert_eq!(
            c.read_raw(&[1, 1], &[2, 2]).unwrap(),
            [&data[4 * isz..6 * isz], &data[7 * isz..9 * isz]].concat(),
            "{elem:?}"
        );
        let again = Column::open(&g, &name).unwrap();
        assert_eq!(again.elem(), elem);
        assert_eq!(again.shape(), vec![4, 3]);
        assert_eq!(again.chunk(), Some(vec![64, 3]));
    }
}

#[test]
fn unwritten_rows_read_as_the_layouts_fill_values() {
    let (_d, p) = tmp();
    let f = H5File::open(&p, false).unwrap();
    let g = f.group("g", true).unwrap().unwrap();
    let fl = Column::create(&g, "f", &spec(DType::F64, &[2], &[4])).unwrap();
    let raw = fl.read_raw(&[0], &[2]).unwrap();
    assert!(f64::from_le_bytes(raw[..8].try_into().unwrap()).is_nan());
    let i = Column::create(&g, "i", &spec(DType::I32, &[2], &[4])).unwrap();
    assert_eq!(i.read_raw(&[0], &[2]).unwrap(), vec![0; 8]);
    let b = Column::create(&g, "b", &spec(DType::Bool, &[2], &[4])).unwrap();
    assert_eq!(b.read_raw(&[0], &[2]).unwrap(), vec![0, 0]);
    let s = Column::create(&g, "s", &spec(DType::Str, &[3], &[4])).unwrap();
    s.write_strings(&[1], &[1], &["\"x\""]).unwrap();
    assert_eq!(s.read_strings(&[0], &[3]).unwrap(), vec!["", "\"x\"", ""]);
}

#[test]
fn strings_round_trip_and_nul_is_refused() {
    let (_d, p) = tmp();
    let f = H5File::open(&p, false).unwrap();
    let g = f.group("g", true).unwrap().unwrap();
    let s = Column::create(&g, "info.label", &spec(DType::Str, &[2], &[64])).unwrap();
    s.write_strings(&[0], &[2], &["\"f0\"", "{\"a\": [1, 2], \"b\": \"ü\"}"])
        .unwrap();
    assert_eq!(
        s.read_strings(&[0], &[2]).unwrap(),
        vec!["\"f0\"", "{\"a\": [1, 2], \"b\": \"ü\"}"]
    );
    let e = s.write_strings(&[0], &[1], &["a\0b"]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(s.read_strings(&[0], &[1]).unwrap(), vec!["\"f0\""]);
}

#[test]
fn out_of_shape_and_wrong_length_are_errors_not_panics() {
    let (_d, p) = tmp();
    let f = H5File::open(&p, false).unwrap();
    let g = f.group("g", true).unwrap().unwrap();
    let c = Column::create(&g, "x", &spec(DType::F64, &[2, 3], &[1, 3])).unwrap();
    assert_eq!(
        c.read_raw(&[1, 0], &[2, 3]).unwrap_err().kind,
        ErrorKind::Corrupt
    );
    assert_eq!(c.read_raw(&[0], &[1]).unwrap_err().kind, ErrorKind::Corrupt);
    let e = c.write_raw(&[0, 0], &[1, 3], &[0; 7]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        c.read_strings(&[0, 0], &[1, 1]).unwrap_err().kind,
        ErrorKind::TypeMismatch
    );
    let e = Column::create(&g, "y", &spec(DType::F64, &[2], &[0])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
}

#[test]
fn attributes_are_written_and_read_as_h5py_does() {
    let (_d, p) = tmp();
    let f = H5File::open(&p, false).unwrap();
    let g = f.group("default", true).unwrap().unwrap();
    assert_eq!(file::read_int_attr(&g, "n_frames").unwrap(), None);
    file::write_int_attr(&g, "n_frames", 3).unwrap();
    file::write_int_attr(&g, "n_frames", 5).unwrap();
    assert_eq!(file::read_int_attr(&g, "n_frames").unwrap(), Some(5));
    let cols = vec!["calc.energy".to_string(), "arrays.positions".to_string()];
    file::write_str_list_attr(&g, "columns", &cols[..1]).unwrap();
    file::write_str_list_attr(&g, "columns", &cols).unwrap();
    assert_eq!(file::read_str_list_attr(&g, "columns").unwrap(), Some(cols));
    file::write_str_list_attr(&g, "per_atom_columns", &[]).unwrap();
    assert_eq!(
        file::read_str_list_attr(&g, "per_atom_columns").unwrap(),
        Some(vec![])
    );
    file::write_str_attr(&g, "asebytes_version", "0.3.3").unwrap();
    assert_eq!(
        file::read_str_attr(&g, "asebytes_version")
            .unwrap()
            .as_deref(),
        Some("0.3.3")
    );
}

#[test]
fn groups_are_listed_sorted_and_missing_files_have_none() {
    let (_d, p) = tmp();
    assert_eq!(file::list_groups(&p).unwrap(), Vec::<String>::new());
    {
        let f = H5File::open(&p, false).unwrap();
        f.group("train", true).unwrap();
        f.group("default", true).unwrap();
        assert!(f.group("absent", false).unwrap().is_none());
        f.flush().unwrap();
        f.close().unwrap();
    }
    assert_eq!(file::list_groups(&p).unwrap(), vec!["default", "train"]);
    let f = H5File::open(&p, true).unwrap();
    assert!(f.is_read_only());
    assert!(f.group("default", false).unwrap().is_some());
}

#[test]
fn a_file_that_is_not_hdf5_is_corrupt() {
    let (_d, p) = tmp();
    std::fs::write(&p, b"not an hdf5 file at all").unwrap();
    let e = H5File::open(&p, true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Corrupt, "{}", e.message);
    let e = H5File::open(&p.with_extension("none.h5"), true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
}
