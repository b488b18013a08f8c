//! How each backend's fixture opens the store of one trial (a directory per trial; the
//! server backends get a database of their own on the suite's private server).

use std::path::Path;

use asebytes_daemon::backend::memory::MemoryBackend;
use asebytes_daemon::backend::{Backend, OpenOptions};

use crate::as_values;
#[cfg(feature = "mongodb")]
use crate::mongo_server;
#[cfg(feature = "redis")]
use crate::redis_server;
use crate::{WithCaps, apply_overrides};

pub(crate) fn memory_options(dir: &Path, readonly: bool) -> OpenOptions {
    // The directory is unique per trial, so its path is a unique memory store name.
    OpenOptions {
        path: dir.to_string_lossy().into_owned(),
        group: "default".into(),
        readonly,
        options: Default::default(),
    }
}

pub(crate) fn open_memory(dir: &Path) -> Box<dyn Backend> {
    with_overrides(Box::new(
        MemoryBackend::open(&memory_options(dir, false)).expect("open memory"),
    ))
}

pub(crate) fn open_memory_readonly(dir: &Path) -> Box<dyn Backend> {
    with_overrides(Box::new(
        MemoryBackend::open(&memory_options(dir, true)).expect("open memory read-only"),
    ))
}

pub(crate) fn with_overrides(backend: Box<dyn Backend>) -> Box<dyn Backend> {
    match std::env::var("ASEBYTES_TEST_CAPABILITY_OVERRIDES") {
        Ok(spec) if !spec.trim().is_empty() => {
            let caps = apply_overrides(backend.info().caps, &spec)
                .expect("ASEBYTES_TEST_CAPABILITY_OVERRIDES");
            Box::new(WithCaps::new(backend, caps))
        }
        _ => backend,
    }
}

#[cfg(feature = "lmdb")]
pub(crate) fn lmdb_options(dir: &Path, readonly: bool) -> OpenOptions {
    let path = dir.join("store.lmdb").to_string_lossy().into_owned();
    OpenOptions {
        path,
        group: "default".into(),
        readonly,
        options: Default::default(),
    }
}

#[cfg(feature = "lmdb")]
pub(crate) fn open_lmdb(dir: &Path) -> Box<dyn Backend> {
    use asebytes_daemon::backend::lmdb::LmdbBackend;
    Box::new(LmdbBackend::open(&lmdb_options(dir, false)).expect("open lmdb"))
}

#[cfg(feature = "lmdb")]
pub(crate) fn open_lmdb_readonly(dir: &Path) -> Box<dyn Backend> {
    use asebytes_daemon::backend::lmdb::LmdbBackend;
    Box::new(LmdbBackend::open(&lmdb_options(dir, true)).expect("open lmdb read-only"))
}

#[cfg(feature = "zarr")]
pub(crate) fn zarr_open(dir: &Path, ext: &str, readonly: bool) -> Box<dyn Backend> {
    use asebytes_daemon::backend::columnar::Layout;
    use asebytes_daemon::backend::zarr::ZarrBackend;
    let opts = OpenOptions {
        path: dir
            .join(format!("store.{ext}"))
            .to_string_lossy()
            .into_owned(),
        group: "default".into(),
        readonly,
        ..Default::default()
    };
    let layout = if ext == "zarrp" {
        Layout::Padded
    } else {
        Layout::Ragged
    };
    if readonly {
        // A read-only open needs the group to exist, as with a file another tool wrote.
        let rw = OpenOptions {
            readonly: false,
            ..opts.clone()
        };
        let mut w = ZarrBackend::open(&rw, layout).expect("open zarr");
        w.write(&mut |_| Ok(())).expect("create the zarr group");
    }
    Box::new(as_values::AsValues::new(Box::new(
        ZarrBackend::open(&opts, layout).expect("open zarr"),
    )))
}

#[cfg(feature = "zarr")]
pub(crate) fn open_zarr(dir: &Path) -> Box<dyn Backend> {
    zarr_open(dir, "zarr", false)
}

#[cfg(feature = "zarr")]
pub(crate) fn open_zarr_readonly(dir: &Path) -> Box<dyn Backend> {
    zarr_open(dir, "zarr", true)
}

#[cfg(feature = "zarr")]
pub(crate) fn open_zarrp(dir: &Path) -> Box<dyn Backend> {
    zarr_open(dir, "zarrp", false)
}

#[cfg(feature = "zarr")]
pub(crate) fn open_zarrp_readonly(dir: &Path) -> Box<dyn Backend> {
    zarr_open(dir, "zarrp", true)
}

#[cfg(feature = "hdf5")]
pub(crate) fn h5_open(dir: &Path, ext: &str, readonly: bool) -> Box<dyn Backend> {
    use asebytes_daemon::backend::columnar::Layout;
    use asebytes_daemon::backend::hdf5::Hdf5Backend;
    let layout = if ext == "h5p" {
        Layout::Padded
    } else {
        Layout::Ragged
    };
    let opts = OpenOptions {
        path: dir
            .join(format!("store.{ext}"))
            .to_string_lossy()
            .into_owned(),
        group: "default".into(),
        readonly,
        ..Default::default()
    };
    if readonly {
        // A read-only open needs the group to exist, as with a file another tool wrote.
        let mut w = Hdf5Backend::open(
            &OpenOptions {
                readonly: false,
                ..opts.clone()
            },
            layout,
        )
        .expect("open hdf5");
        w.write(&mut |_| Ok(())).expect("create the hdf5 group");
    }
    Box::new(as_values::AsValues::new(Box::new(
        Hdf5Backend::open(&opts, layout).expect("open hdf5"),
    )))
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5(dir: &Path) -> Box<dyn Backend> {
    h5_open(dir, "h5", false)
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5_readonly(dir: &Path) -> Box<dyn Backend> {
    h5_open(dir, "h5", true)
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5p(dir: &Path) -> Box<dyn Backend> {
    h5_open(dir, "h5p", false)
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5p_readonly(dir: &Path) -> Box<dyn Backend> {
    h5_open(dir, "h5p", true)
}

#[cfg(feature = "hdf5")]
pub(crate) fn h5md_open(dir: &Path, readonly: bool) -> Box<dyn Backend> {
    use asebytes_daemon::backend::h5md::H5mdBackend;
    let opts = OpenOptions {
        path: dir.join("store.h5md").to_string_lossy().into_owned(),
        group: "default".into(),
        readonly,
        ..Default::default()
    };
    if readonly {
        let mut w = H5mdBackend::open(&OpenOptions {
            readonly: false,
            ..opts.clone()
        })
        .expect("open h5md");
        w.write(&mut |_| Ok(())).expect("create the h5md file");
    }
    Box::new(as_values::AsValues::new(Box::new(
        H5mdBackend::open(&opts).expect("open h5md"),
    )))
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5md(dir: &Path) -> Box<dyn Backend> {
    h5md_open(dir, false)
}

#[cfg(feature = "hdf5")]
pub(crate) fn open_h5md_readonly(dir: &Path) -> Box<dyn Backend> {
    h5md_open(dir, true)
}

#[cfg(feature = "redis")]
pub(crate) fn redis_options(dir: &Path, readonly: bool) -> OpenOptions {
    // One shared server; each trial's directory gets a logical database of its own, so
    // every trial sees the group `default` empty.
    OpenOptions {
        path: redis_server::shared_url(dir),
        group: "default".into(),
        readonly,
        options: Default::default(),
    }
}

#[cfg(feature = "redis")]
pub(crate) fn open_redis(dir: &Path) -> Box<dyn Backend> {
    use asebytes_daemon::backend::redis::RedisBackend;
    Box::new(RedisBackend::open(&redis_options(dir, false)).expect("open redis"))
}

#[cfg(feature = "redis")]
pub(crate) fn open_redis_readonly(dir: &Path) -> Box<dyn Backend> {
    use asebytes_daemon::backend::redis::RedisBackend;
    Box::new(RedisBackend::open(&redis_options(dir, true)).expect("open redis read-only"))
}

/// Stops test servers the kit started (the suite calls it before exiting).
pub fn stop_servers() {
    #[cfg(feature = "redis")]
    redis_server::stop_shared();
    #[cfg(feature = "mongodb")]
    mongo_server::stop_shared();
}

/// Database the suite probes its private MongoDB server with.
#[cfg(feature = "mongodb")]
pub(crate) const MONGO_DATABASE: &str = "contract";

/// The store of the trial in `dir` on the suite's MongoDB server: the database is named
/// after the (unique) directory, so trials never share one; the group is `default`.
#[cfg(feature = "mongodb")]
pub(crate) fn mongodb_open(dir: &Path, readonly: bool) -> Box<dyn Backend> {
    use asebytes_daemon::backend::mongodb::MongoBackend;
    let name = dir.file_name().expect("temporary directory name");
    let database = name.to_string_lossy().replace('.', "");
    let uri = mongo_server::shared_uri(&database).expect("the suite's MongoDB server");
    let opts = OpenOptions {
        path: uri,
        group: "default".into(),
        readonly,
        ..Default::default()
    };
    Box::new(as_values::AsValues::new(Box::new(
        MongoBackend::open(&opts).expect("open mongodb"),
    )))
}

#[cfg(feature = "mongodb")]
pub(crate) fn open_mongodb(dir: &Path) -> Box<dyn Backend> {
    mongodb_open(dir, false)
}

#[cfg(feature = "mongodb")]
pub(crate) fn open_mongodb_readonly(dir: &Path) -> Box<dyn Backend> {
    mongodb_open(dir, true)
}
