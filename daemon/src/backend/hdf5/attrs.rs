//! The group's attribute map as the columnar core sees it (JSON values) and as h5py
//! writes it: integers as `int64` scalars, strings as vlen UTF-8 scalars, lists of strings
//! as 1-D vlen UTF-8 arrays, lists of numbers as 1-D `int64`/`float64` arrays. Values with
//! no such HDF5 form (objects, mixed lists) are stored as JSON text and read back as JSON
//! when the text is an object.
//!
//! Layer: used by [`super::engine`] on top of [`super::file`].

use hdf5::Group;
use hdf5::types::TypeDescriptor;
use ndarray::Array1;
use serde_json::{Map, Value as Json};

use super::dataset::BoolByte;
use super::file::{self, h5err};
use crate::backend::Result;

/// Reads every attribute of `group` that has a JSON form. Attributes of other types
/// (compounds, references, n-d arrays) are left out; they stay in the file untouched.
pub fn read_all(group: &Group) -> Result<Map<String, Json>> {
    let mut out = Map::new();
    for name in group.attr_names().map_err(h5err("list attributes"))? {
        if let Some(v) = read_one(group, &name)? {
            out.insert(name, v);
        }
    }
    Ok(out)
}

fn read_one(group: &Group, name: &str) -> Result<Option<Json>> {
    let what = format!("read attribute '{name}'");
    let a = group.attr(name).map_err(h5err(&what))?;
    let desc = a
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(&what))?;
    let shape = a.shape();
    if shape.len() > 1 {
        return Ok(None);
    }
    if shape.len() == 1 && shape[0] == 0 {
        return Ok(Some(Json::Array(Vec::new())));
    }
    let scalar = shape.is_empty();
    let list = |items: Vec<Json>| {
        if scalar {
            items.into_iter().next()
        } else {
            Some(Json::Array(items))
        }
    };
    use TypeDescriptor as T;
    let v = match desc {
        T::Integer(_) => list(
            a.read_raw::<i64>()
                .map_err(h5err(&what))?
                .into_iter()
                .map(Json::from)
                .collect(),
        ),
        T::Unsigned(_) => list(
            a.read_raw::<u64>()
                .map_err(h5err(&what))?
                .into_iter()
                .map(Json::from)
                .collect(),
        ),
        T::Float(_) => list(
            a.read_raw::<f64>()
                .map_err(h5err(&what))?
                .into_iter()
                .map(|x| serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number))
                .collect(),
        ),
        T::Boolean => list(
            a.read_raw::<BoolByte>()
                .map_err(h5err(&what))?
                .into_iter()
                .map(|b| Json::Bool(b.0 != 0))
                .collect(),
        ),
        T::VarLenUnicode | T::VarLenAscii => {
            let texts = file::read_str_list_attr(group, name)?.unwrap_or_default();
            if scalar {
                texts.into_iter().next().map(|t| match t.starts_with('{') {
                    true => serde_json::from_str::<Map<String, Json>>(&t)
                        .map_or(Json::String(t), Json::Object),
                    false => Json::String(t),
                })
            } else {
                Some(Json::Array(texts.into_iter().map(Json::String).collect()))
            }
        }
        _ => None,
    };
    Ok(v)
}

/// Writes one attribute in its h5py form, replacing what was there. `null` deletes it.
pub fn write_one(group: &Group, name: &str, value: &Json) -> Result<()> {
    let what = format!("write attribute '{name}'");
    let replace = |g: &Group| -> Result<()> {
        if g.attr_names()
            .map_err(h5err("list attributes"))?
            .iter()
            .any(|n| n == name)
        {
            g.delete_attr(name).map_err(h5err(&what))?;
        }
        Ok(())
    };
    match value {
        Json::Null => replace(group),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                return file::write_int_attr(group, name, i);
            }
            replace(group)?;
            let x = n.as_f64().unwrap_or(f64::NAN);
            group
                .new_attr::<f64>()
                .create(name)
                .and_then(|a| a.write_scalar(&x))
                .map_err(h5err(&what))
        }
        Json::Bool(b) => {
            replace(group)?;
            group
                .new_attr::<BoolByte>()
                .create(name)
                .and_then(|a| a.write_scalar(&BoolByte(u8::from(*b))))
                .map_err(h5err(&what))
        }
        Json::String(s) => file::write_str_attr(group, name, s),
        Json::Array(items) if items.iter().all(Json::is_string) => {
            let texts: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            file::write_str_list_attr(group, name, &texts)
        }
        Json::Array(items) if items.iter().all(|v| v.as_i64().is_some()) => {
            replace(group)?;
            let xs: Array1<i64> = items.iter().filter_map(Json::as_i64).collect();
            group
                .new_attr_builder()
                .with_data(&xs)
                .create(name)
                .map(drop)
                .map_err(h5err(&what))
        }
        Json::Array(items) if items.iter().all(Json::is_number) => {
            replace(group)?;
            let xs: Array1<f64> = items.iter().filter_map(Json::as_f64).collect();
            group
                .new_attr_builder()
                .with_data(&xs)
                .create(name)
                .map(drop)
                .map_err(h5err(&what))
        }
        other => file::write_str_attr(group, name, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::backend::hdf5::file::H5File;

    #[test]
    fn json_attributes_round_trip_in_their_h5py_form() {
        let d = tempfile::tempdir().unwrap();
        let f = H5File::open(&d.path().join("a.h5"), false).unwrap();
        let g = f.group("default", true).unwrap().unwrap();
        let m = json!({
            "n_frames": 3,
            "columns": ["calc.energy", "arrays.positions"],
            "per_atom_columns": [],
            "asebytes_version": "0.3.3",
            "asebytes_rs": {"format": 1, "kinds": {"calc.energy": "float"}},
            "ratio": 0.5,
            "flag": true,
            "ints": [1, 2],
            "floats": [1.5, 2],
            "mixed": [1, "a"],
        });
        for (k, v) in m.as_object().unwrap() {
            write_one(&g, k, v).unwrap();
        }
        write_one(&g, "n_frames", &json!(4)).unwrap();
        let back = read_all(&g).unwrap();
        let mut want = m.as_object().unwrap().clone();
        want.insert("n_frames".into(), json!(4));
        want.insert("floats".into(), json!([1.5, 2.0]));
        want.insert("mixed".into(), json!("[1,\"a\"]"));
        assert_eq!(back, want);
        write_one(&g, "ratio", &Json::Null).unwrap();
        assert!(!read_all(&g).unwrap().contains_key("ratio"));
    }
}
