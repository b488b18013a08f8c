//! Options of the H5MD backend: the HDF5 ones (`compression`, `compression_opts`,
//! `chunk_frames`, parsed exactly as the `hdf5` backend parses them) plus the reference's
//! `author_name` and `author_email`, written to `/h5md/author` when the file is created.

use asebytes_protocol::OptionValue;

use crate::backend::hdf5::config::Hdf5Config;
use crate::backend::{Error, ErrorKind, Options, Result};

/// Option names this backend accepts.
pub const OPTIONS: &[&str] = &[
    "compression",
    "compression_opts",
    "chunk_frames",
    "author_name",
    "author_email",
];

/// Longest accepted author name or e-mail (an attribute, not a document).
pub const MAX_AUTHOR_LEN: usize = 4096;

/// Parsed options of one open store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct H5mdConfig {
    /// Compression and chunking, as for the `hdf5` backend.
    pub hdf5: Hdf5Config,
    /// `/h5md/author` `name`.
    pub author_name: Option<String>,
    /// `/h5md/author` `email`.
    pub author_email: Option<String>,
}

impl H5mdConfig {
    /// Settings from the `Open` options.
    pub fn from_options(opts: &Options) -> Result<Self> {
        Ok(Self {
            hdf5: Hdf5Config::from_options(opts)?,
            author_name: text(opts, "author_name")?,
            author_email: text(opts, "author_email")?,
        })
    }
}

fn text(opts: &Options, name: &str) -> Result<Option<String>> {
    match opts.get(name) {
        None => Ok(None),
        Some(OptionValue::Str(s)) if s.len() <= MAX_AUTHOR_LEN && !s.contains('\0') => {
            Ok(Some(s.clone()))
        }
        Some(other) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "option {name}={other} is not valid: expected a str of at most \
                 {MAX_AUTHOR_LEN} bytes without NUL"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::hdf5::dataset::Compression;

    #[test]
    fn author_and_compression_are_read_and_bad_values_named() {
        let o = Options::default()
            .with("author_name", OptionValue::Str("ada".into()))
            .with("compression", OptionValue::Str("none".into()));
        let c = H5mdConfig::from_options(&o).unwrap();
        assert_eq!(c.author_name.as_deref(), Some("ada"));
        assert_eq!(c.author_email, None);
        assert_eq!(c.hdf5.compression, Compression::None);
        let e =
            H5mdConfig::from_options(&Options::default().with("author_email", OptionValue::Int(1)))
                .unwrap_err();
        assert!(e.message.contains("author_email"), "{e}");
    }
}
