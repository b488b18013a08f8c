//! Backend options as they travel in [`crate::request::Open`]: a map from option name to a
//! plain value. The daemon hands the map to the backend named by the location; each
//! backend takes the options it knows and refuses the rest, listing what it accepts.
//!
//! Since protocol [`crate::version::OPTIONS_AND_PACKED`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One option value: the plain types a Python keyword argument can carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl OptionValue {
    /// The Python type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            OptionValue::Bool(_) => "bool",
            OptionValue::Int(_) => "int",
            OptionValue::Float(_) => "float",
            OptionValue::Str(_) => "str",
        }
    }
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            OptionValue::Int(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Options by name, sorted (so equal option sets compare and print alike).
pub type OptionMap = BTreeMap<String, OptionValue>;
