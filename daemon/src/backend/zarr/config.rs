//! Options of the Zarr backend (asebytes 0.3.3's `ZarrBackend` keywords): `compressor`,
//! `clevel`, `shuffle`, `chunk_frames`, plus `fsync`.
//!
//! Layer: read once at open by [`super::ZarrBackend::open`]; unknown names are refused by
//! the registry from the list in [`OPTIONS`].

use zarrs::array::codec::BloscCompressor;

use crate::backend::{Error, ErrorKind, Options, Result};

/// Option names the Zarr backend accepts.
pub const OPTIONS: &[&str] = &["compressor", "clevel", "shuffle", "chunk_frames", "fsync"];

/// `compressor` values.
pub const COMPRESSORS: &[&str] = &["lz4", "lz4hc", "blosclz", "zstd", "zlib", "snappy", "none"];

/// How numeric chunks are compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compressor {
    /// Blosc with this inner compressor (numeric arrays; bool and string arrays use zstd).
    Blosc(BloscCompressor),
    /// No compression at all.
    None,
}

impl Compressor {
    /// The compressor named `name` (one of [`COMPRESSORS`]).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "lz4" => Compressor::Blosc(BloscCompressor::LZ4),
            "lz4hc" => Compressor::Blosc(BloscCompressor::LZ4HC),
            "blosclz" => Compressor::Blosc(BloscCompressor::BloscLZ),
            "zstd" => Compressor::Blosc(BloscCompressor::Zstd),
            "zlib" => Compressor::Blosc(BloscCompressor::Zlib),
            "snappy" => Compressor::Blosc(BloscCompressor::Snappy),
            "none" => Compressor::None,
            _ => return None,
        })
    }
}

/// The Zarr backend's settings for arrays it creates (existing arrays keep their codecs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZarrConfig {
    /// Numeric compressor (default Blosc-LZ4, as asebytes 0.3.3).
    pub compressor: Compressor,
    /// Compression level 0..=9 (default 5).
    pub clevel: u8,
    /// Blosc byte shuffle (default on).
    pub shuffle: bool,
    /// Frames per chunk of new columns when given (capped so a chunk stays near 4 MiB);
    /// `None` (the default) sizes chunks by bytes (see `columnar::layout`). Never taken
    /// from the size of the first write.
    pub chunk_frames: Option<u64>,
    /// fsync staged files before the commit point (default on: survives power loss, not
    /// only `kill -9`).
    pub fsync: bool,
}

impl Default for ZarrConfig {
    fn default() -> Self {
        Self {
            compressor: Compressor::Blosc(BloscCompressor::LZ4),
            clevel: 5,
            shuffle: true,
            chunk_frames: None,
            fsync: true,
        }
    }
}

impl ZarrConfig {
    /// Settings from the `Open` options (defaults for what is not given).
    pub fn from_options(opts: &Options) -> Result<Self> {
        let mut cfg = Self::default();
        if let Some(c) = opts.choice("compressor", COMPRESSORS)? {
            cfg.compressor = Compressor::parse(c).unwrap_or(Compressor::None);
        }
        if let Some(l) = opts.int_in("clevel", 0, 9)? {
            cfg.clevel = l as u8;
        }
        if let Some(s) = opts.bool("shuffle")? {
            cfg.shuffle = s;
        }
        if let Some(n) = opts.u64("chunk_frames")? {
            if n == 0 || n > 1 << 20 {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "option chunk_frames={n} is not valid: expected an int from 1 to 1048576"
                    ),
                ));
            }
            cfg.chunk_frames = Some(n);
        }
        if let Some(f) = opts.bool("fsync")? {
            cfg.fsync = f;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use asebytes_protocol::OptionValue;

    use super::*;

    #[test]
    fn options_are_typed_and_checked() {
        let o = Options::default()
            .with("compressor", OptionValue::Str("zstd".into()))
            .with("clevel", OptionValue::Int(9))
            .with("chunk_frames", OptionValue::Int(256));
        let c = ZarrConfig::from_options(&o).unwrap();
        assert_eq!(c.compressor, Compressor::Blosc(BloscCompressor::Zstd));
        assert_eq!((c.clevel, c.chunk_frames), (9, Some(256)));
        let bad = Options::default().with("compressor", OptionValue::Str("xz".into()));
        let e = ZarrConfig::from_options(&bad).unwrap_err();
        assert!(e.message.contains("lz4"), "{}", e.message);
        let bad = Options::default().with("chunk_frames", OptionValue::Int(0));
        assert_eq!(
            ZarrConfig::from_options(&bad).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }
}
