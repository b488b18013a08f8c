//! One Parquet cell as the Python value `datasets` hands the reference (numbers, `str`,
//! `None`, nested `list`s, `dict`s for structs), and `np.asarray` of such a value, which
//! the column mapping applies to the columns it maps.
//!
//! Layer: inside [`super`] (the hub backend); [`super::mapping`] calls it per row.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use asebytes_protocol::codec::{NdArray, Value};

/// The value of row `i` of `array`, or a message naming the unsupported type.
pub fn cell(array: &dyn Array, i: usize) -> Result<Value, String> {
    if array.is_null(i) {
        return Ok(Value::Nil);
    }
    Ok(match array.data_type() {
        DataType::Null => Value::Nil,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Int(i64::from(array.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Value::Int(i64::from(array.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Value::Int(i64::from(array.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::Int(i64::from(array.as_primitive::<UInt8Type>().value(i))),
        DataType::UInt16 => Value::Int(i64::from(array.as_primitive::<UInt16Type>().value(i))),
        DataType::UInt32 => Value::Int(i64::from(array.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            i64::try_from(v).map_or(Value::UInt(v), Value::Int)
        }
        DataType::Float16 => Value::Float(f64::from(
            array.as_primitive::<Float16Type>().value(i).to_f32(),
        )),
        DataType::Float32 => Value::Float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::Str(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::Str(array.as_string_view().value(i).to_string()),
        DataType::Binary => Value::Bin(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Value::Bin(array.as_binary::<i64>().value(i).to_vec()),
        DataType::List(_) => list(&array.as_list::<i32>().value(i))?,
        DataType::LargeList(_) => list(&array.as_list::<i64>().value(i))?,
        DataType::FixedSizeList(_, _) => list(&array.as_fixed_size_list().value(i))?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut out = Vec::with_capacity(fields.len());
            for (f, col) in fields.iter().zip(s.columns()) {
                out.push((f.name().clone(), cell(col.as_ref(), i)?));
            }
            Value::Map(out)
        }
        other => return Err(format!("Parquet type {other} is not supported")),
    })
}

fn list(items: &ArrayRef) -> Result<Value, String> {
    (0..items.len())
        .map(|j| cell(items.as_ref(), j))
        .collect::<Result<_, _>>()
        .map(Value::List)
}

/// The dtype `np.asarray` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// Whatever numpy infers: bool, int64 or float64.
    Auto,
    /// `dtype=np.float64`.
    F64,
    /// `dtype=int`.
    I64,
    /// `dtype=bool`.
    Bool,
}

/// What a leaf of a nested list is.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Leaf {
    Bool,
    Int,
    Float,
}

/// `np.asarray(value, dtype)` for numbers, bools and rectangular nested lists of them;
/// `None` for anything numpy would not turn into a numeric array (strings, ragged lists,
/// `None` items).
pub fn asarray(value: &Value, dtype: Dtype) -> Option<NdArray> {
    let mut shape = Vec::new();
    let mut leaves = Vec::new();
    flatten(value, 0, &mut shape, &mut leaves)?;
    let widest = leaves
        .iter()
        .map(|(l, _)| *l)
        .fold(None, |acc, l| match acc {
            Some(a) if a >= l => Some(a),
            _ => Some(l),
        });
    let dtype = match dtype {
        Dtype::Auto => match widest {
            Some(Leaf::Bool) => Dtype::Bool,
            Some(Leaf::Int) => Dtype::I64,
            Some(Leaf::Float) | None => Dtype::F64,
        },
        d => d,
    };
    let array = match dtype {
        Dtype::F64 | Dtype::Auto => {
            let items: Vec<f64> = leaves.iter().map(|(_, v)| *v).collect();
            NdArray::from_f64s(shape, &items)
        }
        Dtype::I64 => {
            let items: Vec<i64> = leaves.iter().map(|(_, v)| *v as i64).collect();
            NdArray::from_elements(shape, &items)
        }
        Dtype::Bool => {
            let items: Vec<bool> = leaves.iter().map(|(_, v)| *v != 0.0).collect();
            NdArray::from_elements(shape, &items)
        }
    };
    array.ok()
}

/// Collects the leaves of `value` (depth-first) and checks that every list at one depth has
/// the same length, as a rectangular numpy array needs.
fn flatten(
    value: &Value,
    depth: usize,
    shape: &mut Vec<u64>,
    leaves: &mut Vec<(Leaf, f64)>,
) -> Option<()> {
    let leaf = match value {
        Value::Bool(b) => (Leaf::Bool, f64::from(u8::from(*b))),
        Value::Int(i) => (Leaf::Int, *i as f64),
        Value::Float(x) => (Leaf::Float, *x),
        Value::List(items) => {
            let n = items.len() as u64;
            match shape.get(depth) {
                Some(&have) if have != n => return None,
                Some(_) => {}
                None if depth == shape.len() && leaves.is_empty() => shape.push(n),
                None => return None,
            }
            for it in items {
                flatten(it, depth + 1, shape, leaves)?;
            }
            return Some(());
        }
        _ => return None,
    };
    // A number must sit at the full depth of the array.
    if depth != shape.len() {
        return None;
    }
    leaves.push(leaf);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: Vec<Value>) -> Value {
        Value::List(items)
    }

    #[test]
    fn asarray_infers_like_numpy() {
        let ints = l(vec![Value::Int(1), Value::Int(2)]);
        let a = asarray(&ints, Dtype::Auto).unwrap();
        assert_eq!(a.to_vec::<i64>().unwrap(), [1, 2]);
        let a = asarray(&ints, Dtype::F64).unwrap();
        assert_eq!(a.to_vec::<f64>().unwrap(), [1.0, 2.0]);
        let mixed = l(vec![Value::Int(1), Value::Float(2.5)]);
        assert_eq!(
            asarray(&mixed, Dtype::Auto).unwrap().to_f64s().unwrap(),
            [1.0, 2.5]
        );
        let m = l(vec![
            l(vec![Value::Float(1.0), Value::Float(2.0)]),
            l(vec![Value::Float(3.0), Value::Float(4.0)]),
        ]);
        assert_eq!(asarray(&m, Dtype::Auto).unwrap().shape, [2, 2]);
        let empty = l(vec![]);
        let a = asarray(&empty, Dtype::Auto).unwrap();
        assert_eq!((a.shape.clone(), a.to_f64s().unwrap().len()), (vec![0], 0));
    }

    #[test]
    fn asarray_refuses_what_numpy_cannot_make_numeric() {
        let ragged = l(vec![l(vec![Value::Int(1)]), l(vec![])]);
        assert!(asarray(&ragged, Dtype::Auto).is_none());
        assert!(asarray(&l(vec![Value::Str("H".into())]), Dtype::Auto).is_none());
        let deep_then_flat = l(vec![l(vec![Value::Int(1)]), Value::Int(2)]);
        assert!(asarray(&deep_then_flat, Dtype::Auto).is_none());
        assert!(asarray(&l(vec![Value::Nil]), Dtype::F64).is_none());
    }
}
