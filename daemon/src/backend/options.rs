//! Backend options as a backend reads them: the `Open` request's option map with typed
//! accessors. The registry has already refused names the backend's table entry does not
//! list, so a backend only takes what it knows; a value of the wrong type or range is an
//! error naming the option.

use asebytes_protocol::{OptionMap, OptionValue};

use super::{Error, ErrorKind, Result};

/// The options of one open, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options(OptionMap);

impl Options {
    /// Wraps an option map.
    pub fn new(map: OptionMap) -> Self {
        Self(map)
    }

    /// Sets one option (tests, and protocol-1 fields folded into the map).
    pub fn with(mut self, name: &str, value: OptionValue) -> Self {
        self.0.insert(name.to_string(), value);
        self
    }

    /// These options without `name`.
    pub fn without(&self, name: &str) -> Self {
        let mut map = self.0.clone();
        map.remove(name);
        Self(map)
    }

    /// The raw value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&OptionValue> {
        self.0.get(name)
    }

    /// Option names given, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether no option was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A non-negative integer option.
    pub fn u64(&self, name: &str) -> Result<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(v) => Err(wrong(name, v, "a non-negative int")),
        }
    }

    /// An integer option within `lo..=hi`.
    pub fn int_in(&self, name: &str, lo: i64, hi: i64) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::Int(i)) if (lo..=hi).contains(i) => Ok(Some(*i)),
            Some(v) => Err(wrong(name, v, &format!("an int from {lo} to {hi}"))),
        }
    }

    /// A boolean option.
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong(name, v, "True or False")),
        }
    }

    /// A string option that must be one of `choices`.
    pub fn choice(&self, name: &str, choices: &[&'static str]) -> Result<Option<&'static str>> {
        match self.get(name) {
            None => Ok(None),
            Some(OptionValue::Str(s)) => match choices.iter().find(|c| **c == s) {
                Some(c) => Ok(Some(c)),
                None => Err(wrong(
                    name,
                    &OptionValue::Str(s.clone()),
                    &format!("one of {}", choices.join(", ")),
                )),
            },
            Some(v) => Err(wrong(
                name,
                v,
                &format!("a str, one of {}", choices.join(", ")),
            )),
        }
    }
}

fn wrong(name: &str, value: &OptionValue, want: &str) -> Error {
    let kind = match value {
        OptionValue::Str(_) | OptionValue::Int(_) if want.starts_with("one of") => {
            ErrorKind::InvalidArgument
        }
        OptionValue::Int(_) if want.contains("int") => ErrorKind::InvalidArgument,
        _ => ErrorKind::TypeMismatch,
    };
    Error::new(
        kind,
        format!(
            "option {name}={value} ({}) is not valid: expected {want}",
            value.type_name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(name: &str, v: OptionValue) -> Options {
        Options::default().with(name, v)
    }

    #[test]
    fn typed_accessors_take_their_type_and_refuse_others() {
        assert_eq!(
            opts("clevel", OptionValue::Int(5)).u64("clevel").unwrap(),
            Some(5)
        );
        assert_eq!(Options::default().u64("clevel").unwrap(), None);
        let e = opts("clevel", OptionValue::Str("5".into()))
            .u64("clevel")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeMismatch);
        assert!(e.message.contains("clevel"), "{}", e.message);
        let e = opts("clevel", OptionValue::Int(12))
            .int_in("clevel", 0, 9)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(
            opts("s", OptionValue::Bool(true)).bool("s").unwrap(),
            Some(true)
        );
    }

    #[test]
    fn choices_name_what_is_accepted() {
        let o = opts("compressor", OptionValue::Str("zstd".into()));
        assert_eq!(
            o.choice("compressor", &["lz4", "zstd"]).unwrap(),
            Some("zstd")
        );
        let e = opts("compressor", OptionValue::Str("xz".into()))
            .choice("compressor", &["lz4", "zstd"])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("lz4, zstd"), "{}", e.message);
    }
}
