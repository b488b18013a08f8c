//! Options of the HDF5 backend, with the reference's defaults: `compression="gzip"` at
//! h5py's default level 4, `compression_opts=None`, `chunk_frames=64`.
//!
//! Only filters built into libhdf5 itself are offered (gzip/deflate); LZF and Blosc are
//! h5py or plugin filters that other readers of the file might lack.

use asebytes_protocol::OptionValue;

use super::dataset::Compression;
use crate::backend::{Error, ErrorKind, Options, Result};

/// Option names this backend accepts.
pub const OPTIONS: &[&str] = &["compression", "compression_opts", "chunk_frames"];

/// h5py's gzip level when `compression_opts` is not given.
pub const DEFAULT_GZIP_LEVEL: u8 = 4;

/// Largest accepted `chunk_frames` (a chunk must stay well below HDF5's 4 GiB limit).
pub const MAX_CHUNK_FRAMES: u64 = 1 << 20;

/// Parsed options of one open store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hdf5Config {
    /// Filter for new numeric columns.
    pub compression: Compression,
    /// Frames per chunk of new columns when given; `None` (the default) sizes chunks by
    /// bytes (see `columnar::layout`).
    pub chunk_frames: Option<u64>,
}

impl Default for Hdf5Config {
    fn default() -> Self {
        Self {
            compression: Compression::Gzip(DEFAULT_GZIP_LEVEL),
            chunk_frames: None,
        }
    }
}

impl Hdf5Config {
    /// Settings from the `Open` options, as h5py takes them: `compression` is a filter
    /// name (`"gzip"`, `"none"`), an int (a gzip level, h5py's shorthand) or `False`;
    /// `compression_opts` the gzip level; `chunk_frames` a positive int. (Python `None`
    /// never reaches the daemon: it means "the default", gzip.)
    pub fn from_options(opts: &Options) -> Result<Self> {
        let mut level = opts.int_in("compression_opts", 0, 9)?;
        let name = match opts.get("compression") {
            None => None,
            Some(OptionValue::Str(s)) => Some(s.as_str()),
            Some(OptionValue::Bool(false)) => Some("none"),
            Some(OptionValue::Int(l)) if (0..=9).contains(l) && level.is_none() => {
                level = Some(*l);
                Some("gzip")
            }
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "option compression={other} is not valid: expected \"gzip\", \"none\", \
                         a gzip level 0-9 or False"
                    ),
                ));
            }
        };
        Self::from_parts(name, level, opts.u64("chunk_frames")?)
    }

    /// Builds the configuration from the raw option values: `compression` is `"gzip"`
    /// (alias `"deflate"`) or `"none"`; `compression_opts` the gzip level 0-9;
    /// `chunk_frames` at least 1.
    pub fn from_parts(
        compression: Option<&str>,
        compression_opts: Option<i64>,
        chunk_frames: Option<u64>,
    ) -> Result<Self> {
        let level = match compression_opts {
            None => DEFAULT_GZIP_LEVEL,
            Some(l) => u8::try_from(l).ok().filter(|l| *l <= 9).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("option compression_opts={l} is not valid: expected a gzip level from 0 to 9"),
                )
            })?,
        };
        let compression = match compression.map(str::to_ascii_lowercase).as_deref() {
            None | Some("gzip") | Some("deflate") => Compression::Gzip(level),
            Some("none") => {
                if compression_opts.is_some() {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "option compression_opts needs compression=\"gzip\"",
                    ));
                }
                Compression::None
            }
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "option compression={other:?} is not valid: expected one of gzip, none \
                         (libhdf5 has no other filter built in; lzf and blosc need plugins \
                         other readers may lack)"
                    ),
                ));
            }
        };
        let chunk_frames = match chunk_frames {
            None => None,
            Some(n) if (1..=MAX_CHUNK_FRAMES).contains(&n) => Some(n),
            Some(n) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "option chunk_frames={n} is not valid: expected an int from 1 to {MAX_CHUNK_FRAMES}"
                    ),
                ));
            }
        };
        Ok(Self {
            compression,
            chunk_frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_taken_as_h5py_takes_them() {
        let o = |k: &str, v: OptionValue| Options::default().with(k, v);
        let c = Hdf5Config::from_options(&o("compression", OptionValue::Int(7))).unwrap();
        assert_eq!(c.compression, Compression::Gzip(7));
        let c = Hdf5Config::from_options(&o("compression", OptionValue::Bool(false))).unwrap();
        assert_eq!(c.compression, Compression::None);
        let c = Hdf5Config::from_options(
            &o("compression", OptionValue::Str("gzip".into()))
                .with("compression_opts", OptionValue::Int(1))
                .with("chunk_frames", OptionValue::Int(16)),
        )
        .unwrap();
        assert_eq!(
            c,
            Hdf5Config {
                compression: Compression::Gzip(1),
                chunk_frames: Some(16)
            }
        );
        let e = Hdf5Config::from_options(&o("compression", OptionValue::Float(1.0))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        let e = Hdf5Config::from_options(&o("chunk_frames", OptionValue::Int(-1))).unwrap_err();
        assert!(e.message.contains("chunk_frames"), "{}", e.message);
    }

    #[test]
    fn defaults_are_the_references() {
        let c = Hdf5Config::from_parts(None, None, None).unwrap();
        assert_eq!(c, Hdf5Config::default());
        assert_eq!(c.compression, Compression::Gzip(4));
        assert_eq!(c.chunk_frames, None);
    }

    #[test]
    fn bad_values_name_the_option_and_what_is_accepted() {
        let e = Hdf5Config::from_parts(Some("lzf"), None, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("gzip, none"), "{}", e.message);
        let e = Hdf5Config::from_parts(None, Some(12), None).unwrap_err();
        assert!(e.message.contains("compression_opts"), "{}", e.message);
        let e = Hdf5Config::from_parts(None, None, Some(0)).unwrap_err();
        assert!(e.message.contains("chunk_frames"), "{}", e.message);
        assert_eq!(
            Hdf5Config::from_parts(Some("none"), None, Some(8)).unwrap(),
            Hdf5Config {
                compression: Compression::None,
                chunk_frames: Some(8)
            }
        );
    }
}
