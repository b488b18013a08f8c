//! Unit tests of the Zarr backend through the backend traits: typed round trips on both
//! layouts, the reference's bugs not copied, bad input refused before anything is written,
//! packed columns, chunking, and the journal's crash recovery.

use asebytes_protocol::codec::{self, NdArray, NdScalar, Value};
use asebytes_protocol::{Key, Row};
use serde_bytes::ByteBuf;
use tempfile::TempDir;

use super::*;
use crate::backend::{Backend, ErrorKind, Writer};

fn k(s: &str) -> Key {
    ByteBuf::from(s.as_bytes().to_vec())
}

fn enc(v: &Value) -> ByteBuf {
    ByteBuf::from(codec::encode(v).unwrap())
}

fn row(fields: &[(&str, Value)]) -> Row {
    fields.iter().map(|(key, v)| (k(key), enc(v))).collect()
}

fn f64s(shape: &[u64], start: f64) -> Value {
    let n: u64 = shape.iter().product();
    let items: Vec<f64> = (0..n).map(|i| start + i as f64).collect();
    Value::Array(NdArray::from_f64s(shape.to_vec(), &items).unwrap())
}

fn i64s(items: &[i64]) -> Value {
    Value::Array(NdArray::from_elements(vec![items.len() as u64], items).unwrap())
}

/// An atoms-like frame of `n` atoms.
fn frame(n: u64, e: f64) -> Row {
    row(&[
        ("arrays.numbers", i64s(&vec![1; n as usize])),
        ("arrays.positions", f64s(&[n, 3], e)),
        ("cell", f64s(&[3, 3], 0.0)),
        (
            "pbc",
            Value::Array(NdArray::from_elements(vec![3], &[true, false, true]).unwrap()),
        ),
        ("calc.energy", Value::Float(e)),
        ("calc.forces", f64s(&[n, 3], -e)),
        ("calc.stress", f64s(&[6], e)),
        ("info.step", Value::Int(e as i64)),
        ("info.flag", Value::Bool(true)),
        ("info.label", Value::Str(format!("f{e}"))),
        (
            "info.meta",
            Value::Map(vec![(
                "a".into(),
                Value::List(vec![Value::Int(1), Value::Float(2.5)]),
            )]),
        ),
        ("info.i32", Value::Scalar(NdScalar::from_element(7i32))),
    ])
}

struct Fixture {
    _dir: TempDir,
    opts: OpenOptions,
}

impl Fixture {
    fn new(ext: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let opts = OpenOptions {
            path: dir
                .path()
                .join(format!("t.{ext}"))
                .to_string_lossy()
                .into_owned(),
            group: "default".into(),
            ..Default::default()
        };
        Self { _dir: dir, opts }
    }

    fn open(&self) -> Box<dyn Backend> {
        let layout = if self.opts.path.ends_with(".zarrp") {
            Layout::Padded
        } else {
            Layout::Ragged
        };
        let cfg = ZarrConfig {
            fsync: false,
            ..ZarrConfig::default()
        };
        Box::new(ZarrBackend::open_with(&self.opts, cfg, layout).unwrap())
    }
}

fn write(
    b: &mut dyn Backend,
    f: impl Fn(&mut dyn Writer) -> crate::backend::Result<()>,
) -> crate::backend::Result<()> {
    b.write(&mut |w| f(w))
}

fn get(b: &dyn Backend, i: u64) -> Option<Vec<(String, Value)>> {
    let r = b.reader();
    let s = r.snapshot().unwrap();
    s.get(i, None).unwrap().map(|row| {
        row.into_iter()
            .map(|(key, v)| {
                (
                    String::from_utf8(key.into_vec()).unwrap(),
                    codec::decode(&v).unwrap(),
                )
            })
            .collect()
    })
}

fn decoded(r: &Row) -> Vec<(String, Value)> {
    r.iter()
        .map(|(key, v)| {
            (
                String::from_utf8(key.to_vec()).unwrap(),
                codec::decode(v).unwrap(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<(String, Value)>) -> Vec<(String, Value)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn roundtrip(ext: &str) {
    let fx = Fixture::new(ext);
    let mut b = fx.open();
    let rows = [frame(6, 1.0), frame(3, 2.0), frame(9, 3.0)];
    write(&mut *b, |w| {
        w.extend(rows.iter().cloned().map(Some).collect())
            .map(|_| ())
    })
    .unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            sorted(get(&*b, i as u64).unwrap()),
            sorted(decoded(r)),
            "frame {i} ({ext})"
        );
    }
    drop(b);
    let b = fx.open();
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 3);
    assert_eq!(sorted(get(&*b, 1).unwrap()), sorted(decoded(&rows[1])));
}

#[test]
fn test_extend_round_trips_every_type_ragged() {
    roundtrip("zarr");
}

#[test]
fn test_extend_round_trips_every_type_padded() {
    roundtrip("zarrp");
}

#[test]
fn test_keys_in_later_batches_and_missing_ints_read_missing() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend(vec![Some(row(&[("info.a", Value::Int(1))]))])
            .map(|_| ())
    })
    .unwrap();
    write(&mut *b, |w| {
        w.extend(vec![Some(row(&[("info.b", Value::Int(2))])), None])
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(get(&*b, 0).unwrap(), vec![("info.a".into(), Value::Int(1))]);
    assert_eq!(get(&*b, 1).unwrap(), vec![("info.b".into(), Value::Int(2))]);
    assert_eq!(get(&*b, 2), None, "a reserved row reads as None");
}

#[test]
fn test_set_replaces_update_adds_drop_removes() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend(vec![Some(frame(3, 1.0)), Some(frame(3, 2.0))])
            .map(|_| ())
    })
    .unwrap();
    write(&mut *b, |w| {
        w.set(0, Some(row(&[("calc.energy", Value::Float(9.0))])))
    })
    .unwrap();
    assert_eq!(
        get(&*b, 0).unwrap(),
        vec![("calc.energy".into(), Value::Float(9.0))]
    );
    write(&mut *b, |w| {
        w.update(1, row(&[("info.new", Value::Str("x".into()))]))
    })
    .unwrap();
    assert!(
        get(&*b, 1)
            .unwrap()
            .contains(&("info.new".into(), Value::Str("x".into())))
    );
    write(&mut *b, |w| w.drop_keys(&[k("calc.energy")], Some(&[0]))).unwrap();
    assert_eq!(get(&*b, 0), None, "a row without keys is a placeholder");
    write(&mut *b, |w| w.drop_keys(&[k("info.new")], None)).unwrap();
    assert!(
        !get(&*b, 1)
            .unwrap()
            .iter()
            .any(|(key, _)| key == "info.new")
    );
    let group = std::path::Path::new(&fx.opts.path).join("default");
    assert!(
        !group.join("info.new").exists(),
        "the column's array is deleted"
    );
}

#[test]
fn test_reserved_row_can_be_set_with_atoms() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend(vec![Some(frame(2, 1.0)), None, Some(frame(4, 3.0))])
            .map(|_| ())
    })
    .unwrap();
    write(&mut *b, |w| w.set(1, Some(frame(5, 2.0)))).unwrap();
    assert_eq!(
        sorted(get(&*b, 1).unwrap()),
        sorted(decoded(&frame(5, 2.0)))
    );
    assert_eq!(
        sorted(get(&*b, 2).unwrap()),
        sorted(decoded(&frame(4, 3.0)))
    );
}

#[test]
fn test_bad_input_is_refused_and_changes_nothing() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| w.extend(vec![Some(frame(3, 1.0))]).map(|_| ())).unwrap();
    let before = get(&*b, 0);
    let e = write(&mut *b, |w| {
        w.extend(vec![Some(row(&[
            ("calc.stress", f64s(&[7], 0.0)),
            ("_offsets", Value::Int(1)),
        ]))])
        .map(|_| ())
    })
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    let e = write(&mut *b, |w| {
        w.update(0, row(&[("calc.energy", Value::Str("x".into()))]))?;
        w.update(0, row(&[("calc.energy", Value::Float(f64::NAN))]))
    })
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 1);
    assert_eq!(get(&*b, 0), before);
}

#[test]
fn test_first_one_frame_extend_does_not_fix_one_frame_chunks() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| w.extend(vec![Some(frame(3, 1.0))]).map(|_| ())).unwrap();
    let meta = std::fs::read_to_string(
        std::path::Path::new(&fx.opts.path).join("default/calc.energy/zarr.json"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&meta).unwrap();
    // By default a chunk holds at least 64 KiB: 8192 energies (8 bytes each).
    assert_eq!(
        doc.pointer("/chunk_grid/configuration/chunk_shape/0")
            .and_then(|v| v.as_u64()),
        Some(8192)
    );
}

#[test]
fn test_chunk_frames_when_given_is_the_chunk_size() {
    let mut fx = Fixture::new("zarr");
    fx.opts.options = crate::backend::Options::default()
        .with("chunk_frames", asebytes_protocol::OptionValue::Int(16));
    let dir = std::path::PathBuf::from(&fx.opts.path);
    let cfg = ZarrConfig::from_options(&fx.opts.options).unwrap();
    let mut b = ZarrBackend::open_with(&fx.opts, cfg, Layout::Ragged).unwrap();
    write(&mut b, |w| w.extend(vec![Some(frame(3, 1.0))]).map(|_| ())).unwrap();
    let chunk0 = |array: &str| {
        let meta = std::fs::read_to_string(dir.join(format!("default/{array}/zarr.json"))).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&meta).unwrap();
        doc.pointer("/chunk_grid/configuration/chunk_shape/0")
            .and_then(|v| v.as_u64())
    };
    assert_eq!(chunk0("calc.energy"), Some(16));
    assert_eq!(chunk0("arrays.positions"), Some(16 * 3));
}

#[test]
fn test_packed_column_per_frame_and_ragged() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend(vec![Some(frame(2, 1.0)), None, Some(frame(3, 2.0))])
            .map(|_| ())
    })
    .unwrap();
    let r = b.reader();
    let s = r.snapshot().unwrap();
    let p = s
        .get_column_packed(&k("calc.energy"), &[0, 1, 2])
        .unwrap()
        .unwrap();
    assert_eq!(p.shape, vec![3]);
    assert_eq!(p.present.as_deref().map(|b| &b[..]), Some(&[1u8, 0, 1][..]));
    let p = s
        .get_column_packed(&k("arrays.positions"), &[0, 1, 2])
        .unwrap()
        .unwrap();
    assert_eq!(p.shape, vec![5, 3]);
    assert_eq!(p.offsets, Some(vec![0, 2, 2, 5]));
}

#[test]
fn test_update_column_writes_slices() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend((0..10).map(|i| Some(frame(2, i as f64))).collect())
            .map(|_| ())
    })
    .unwrap();
    write(&mut *b, |w| {
        let (idx, vals): (Vec<u64>, Vec<ByteBuf>) = (0..10)
            .map(|i| (i, enc(&Value::Float(100.0 + i as f64))))
            .unzip();
        w.update_column(&k("calc.energy"), &idx, vals)
    })
    .unwrap();
    assert!(
        get(&*b, 7)
            .unwrap()
            .contains(&("calc.energy".into(), Value::Float(107.0)))
    );
}

#[test]
fn test_interrupted_commit_is_discarded_and_journal_is_finished() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    write(&mut *b, |w| w.extend(vec![Some(frame(2, 1.0))]).map(|_| ())).unwrap();
    drop(b);
    let group = std::path::Path::new(&fx.opts.path).join("default");
    // A crash before the commit point: staged files only.
    std::fs::create_dir_all(group.join(writer::STAGING)).unwrap();
    std::fs::write(group.join(writer::STAGING).join("0"), b"garbage").unwrap();
    let b = fx.open();
    assert!(!group.join(writer::STAGING).exists());
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 1);
    drop(b);
    // A crash after it: the journal is applied on open.
    let doc = std::fs::read(group.join("zarr.json")).unwrap();
    let text = String::from_utf8(doc)
        .unwrap()
        .replace("\"n_frames\": 1", "\"n_frames\": 0");
    std::fs::create_dir_all(group.join(writer::STAGING)).unwrap();
    std::fs::write(group.join(writer::STAGING).join("0"), text).unwrap();
    std::fs::write(
        group.join(writer::JOURNAL),
        r#"{"erase_prefixes":[],"erase":[],"sets":[[0,"zarr.json"]]}"#,
    )
    .unwrap();
    let b = fx.open();
    assert_eq!(b.reader().snapshot().unwrap().len().unwrap(), 0);
    assert!(!group.join(writer::JOURNAL).exists());
}

#[test]
fn test_list_groups_lists_padded_groups_too() {
    let fx = Fixture::new("zarrp");
    let mut b = fx.open();
    write(&mut *b, |w| w.extend(vec![Some(frame(2, 1.0))]).map(|_| ())).unwrap();
    assert_eq!(
        list_groups(&fx.opts.path).unwrap(),
        vec!["default".to_string()]
    );
}

/// Values that do not fit their column turn it into a JSON column, in the same
/// transaction: every value, old and new, keeps its type, also after reopening.
fn type_changes_widen_the_column(ext: &str) {
    let fx = Fixture::new(ext);
    let mut b = fx.open();
    write(&mut *b, |w| {
        w.extend(vec![Some(frame(3, 1.0)), Some(frame(2, 2.0)), None])
            .map(|_| ())
    })
    .unwrap();
    let int8 = Value::Array(NdArray::from_elements(vec![2], &[1i8, -2]).unwrap());
    let nan = Value::Array(NdArray::from_f64s(vec![2], &[f64::NAN, f64::INFINITY]).unwrap());
    let cplx = Value::Array(
        NdArray::new(
            codec::DType::parse("<c16").unwrap(),
            vec![1],
            [1.5f64.to_le_bytes(), (-2.0f64).to_le_bytes()].concat(),
        )
        .unwrap(),
    );
    write(&mut *b, |w| {
        w.update(0, row(&[("calc.stress", int8.clone())]))?;
        w.update(1, row(&[("info.step", Value::Str("two".into()))]))?;
        w.update(1, row(&[("calc.stress", nan.clone())]))?;
        w.extend(vec![Some(row(&[
            ("info.flag", Value::Bin(vec![0, 255])),
            ("info.c", Value::Complex(1.0, -1.0)),
            ("info.ca", cplx.clone()),
            ("arrays.positions", f64s(&[2, 3], 0.0)),
        ]))])
        .map(|_| ())
    })
    .unwrap();
    for b in [b, fx.open()] {
        let at = |i: u64, key: &str| {
            get(&*b, i).and_then(|r| r.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
        };
        assert_eq!(at(0, "calc.stress"), Some(int8.clone()));
        let Some(Value::Array(a)) = at(1, "calc.stress") else {
            panic!("stress of frame 1");
        };
        assert_eq!(a.dtype.as_str(), "<f8");
        assert!(a.to_f64s().unwrap()[0].is_nan());
        assert_eq!(at(2, "calc.stress"), None);
        assert_eq!(at(0, "info.step"), Some(Value::Int(1)));
        assert_eq!(at(1, "info.step"), Some(Value::Str("two".into())));
        assert_eq!(at(0, "info.flag"), Some(Value::Bool(true)));
        assert_eq!(at(3, "info.flag"), Some(Value::Bin(vec![0, 255])));
        assert_eq!(at(3, "info.c"), Some(Value::Complex(1.0, -1.0)));
        assert_eq!(at(3, "info.ca"), Some(cplx.clone()));
        assert_eq!(at(1, "calc.energy"), Some(Value::Float(2.0)));
        assert_eq!(get(&*b, 2), None);
    }
}

#[test]
fn test_type_changes_widen_the_column_ragged() {
    type_changes_widen_the_column("zarr");
}

#[test]
fn test_type_changes_widen_the_column_padded() {
    type_changes_widen_the_column("zarrp");
}

#[test]
fn test_set_with_a_new_atom_count_moves_the_frame() {
    let fx = Fixture::new("zarr");
    let mut b = fx.open();
    let rows = [frame(3, 1.0), frame(2, 2.0), frame(4, 3.0)];
    write(&mut *b, |w| {
        w.extend(rows.iter().cloned().map(Some).collect())
            .map(|_| ())
    })
    .unwrap();
    write(&mut *b, |w| w.set(1, Some(frame(5, 9.0)))).unwrap();
    for b in [b, fx.open()] {
        assert_eq!(get(&*b, 0).map(sorted), Some(sorted(decoded(&rows[0]))));
        assert_eq!(
            get(&*b, 1).map(sorted),
            Some(sorted(decoded(&frame(5, 9.0))))
        );
        assert_eq!(get(&*b, 2).map(sorted), Some(sorted(decoded(&rows[2]))));
    }
}
