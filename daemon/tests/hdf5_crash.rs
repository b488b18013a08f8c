//! `kill -9` during appends to an HDF5 store, at the engine level: a child process (this
//! test binary, re-run with `ABT_HDF5_CHILD` set) appends batches through
//! [`Hdf5Engine`] and prints each acknowledged commit; the parent kills it with SIGKILL
//! at a random moment, reopens the file and checks that it opens, that every
//! acknowledged batch is there and that no frame reads garbage. HDF5 cannot promise
//! this (its metadata writes are not atomic), so the test counts how often it fails and
//! fails itself only above the rate `docs/backends/hdf5.md` states.
//!
//! `ABT_HDF5_CRASH_ROUNDS` sets the number of kills (default 30).
#![cfg(feature = "hdf5")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use asebytes_daemon::backend::columnar::engine::{ArraySpec, DType, Engine, EngineRead, Slab};
use asebytes_daemon::backend::hdf5::config::Hdf5Config;
use asebytes_daemon::backend::hdf5::engine::Hdf5Engine;
use serde_json::{Map, Value as Json, json};

const BATCH: u64 = 8;
const ATOMS: u64 = 4;
const CHILD_ENV: &str = "ABT_HDF5_CHILD";

fn attrs(n: u64) -> Map<String, Json> {
    json!({
        "n_frames": n,
        "columns": ["calc.energy", "arrays.positions"],
        "per_atom_columns": ["arrays.positions"],
        "asebytes_version": "test",
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// Frame `i`'s energy is `i`; its positions are `i` everywhere.
fn append(e: &Hdf5Engine, n: u64) -> Result<u64, String> {
    let err = |x: asebytes_daemon::backend::Error| x.to_string();
    let new = n + BATCH;
    e.resize("calc.energy", &[new]).map_err(err)?;
    let energies: Vec<u8> = (n..new).flat_map(|i| (i as f64).to_le_bytes()).collect();
    e.write_slab(
        "calc.energy",
        Slab {
            start: &[n],
            count: &[BATCH],
        },
        &energies,
    )
    .map_err(err)?;
    e.resize("arrays.positions", &[new * ATOMS, 3])
        .map_err(err)?;
    let pos: Vec<u8> = (n..new)
        .flat_map(|i| std::iter::repeat_n(i as f64, (ATOMS * 3) as usize))
        .flat_map(f64::to_le_bytes)
        .collect();
    let slab = Slab {
        start: &[n * ATOMS, 0],
        count: &[BATCH * ATOMS, 3],
    };
    e.write_slab("arrays.positions", slab, &pos).map_err(err)?;
    e.commit(&attrs(new)).map_err(err)?;
    Ok(new)
}

/// `ABT_HDF5_CRASH_COMPRESSION=none` measures uncompressed columns.
fn config() -> Hdf5Config {
    let c = std::env::var("ABT_HDF5_CRASH_COMPRESSION").ok();
    Hdf5Config::from_parts(c.as_deref(), None, None).unwrap()
}

/// The child: append forever, printing `ack <n_frames>` after each commit.
fn child(path: &Path) {
    let e = Hdf5Engine::open(path, "default", false, config()).unwrap();
    let mut n = match e.read_attrs().unwrap() {
        Some(a) => a.get("n_frames").and_then(Json::as_u64).unwrap_or(0),
        None => {
            let spec = |shape: Vec<u64>, chunks: Vec<u64>| ArraySpec {
                dtype: DType::F64,
                shape,
                chunks,
            };
            e.create_array("calc.energy", &spec(vec![0], vec![64]))
                .unwrap();
            e.create_array("arrays.positions", &spec(vec![0, 3], vec![256, 3]))
                .unwrap();
            e.commit(&attrs(0)).unwrap();
            0
        }
    };
    loop {
        n = append(&e, n).unwrap();
        println!("ack {n}");
    }
}

#[derive(Debug, Default)]
struct Tally {
    rounds: u32,
    unreadable: u32,
    lost: u32,
    garbage: u32,
}

/// Checks the store after a kill; `Err` says what is wrong.
fn check(path: &Path, acked: u64) -> Result<u64, (&'static str, String)> {
    let e = Hdf5Engine::open(path, "default", false, Hdf5Config::default())
        .map_err(|x| ("unreadable", x.to_string()))?;
    let a = e.read_attrs().map_err(|x| ("unreadable", x.to_string()))?;
    let n = a
        .and_then(|a| a.get("n_frames").and_then(Json::as_u64))
        .ok_or(("unreadable", "no n_frames".to_string()))?;
    if n < acked {
        return Err(("lost", format!("n_frames {n} < acknowledged {acked}")));
    }
    let en = e
        .read_slab(
            "calc.energy",
            Slab {
                start: &[0],
                count: &[n],
            },
        )
        .map_err(|x| ("unreadable", x.to_string()))?;
    let pos = e
        .read_slab(
            "arrays.positions",
            Slab {
                start: &[0, 0],
                count: &[n * ATOMS, 3],
            },
        )
        .map_err(|x| ("unreadable", x.to_string()))?;
    let f = |b: &[u8]| f64::from_le_bytes(b.try_into().unwrap_or_default());
    for i in 0..n as usize {
        let ok_e = f(&en[i * 8..i * 8 + 8]) == i as f64;
        let row = (ATOMS * 3) as usize * 8;
        let ok_p = pos[i * row..(i + 1) * row]
            .chunks(8)
            .all(|b| f(b) == i as f64);
        if !ok_e || !ok_p {
            return Err(("garbage", format!("frame {i} of {n} reads wrong values")));
        }
    }
    Ok(n)
}

#[test]
fn kill_9_during_appends_is_measured() {
    if let Some(p) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&p));
        return;
    }
    let rounds: u32 = std::env::var("ABT_HDF5_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let mut path = dir.path().join("crash-0.h5");
    let mut tally = Tally::default();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut acked = 0;
    for round in 0..rounds {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait_acks = 1 + (seed >> 33) % 20;
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_during_appends_is_measured",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(n) = line
                .strip_prefix("ack ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                acked = n;
                seen += 1;
                if seen >= wait_acks {
                    break;
                }
            }
        }
        c.kill().unwrap();
        c.wait().unwrap();
        // Acks printed after the last one we read may have been lost in the pipe: the
        // check counts only what we saw.
        tally.rounds += 1;
        match check(&path, acked) {
            Ok(n) => acked = n,
            Err((what, why)) => {
                eprintln!("round {round}: {what}: {why}");
                match what {
                    "lost" => tally.lost += 1,
                    "garbage" => tally.garbage += 1,
                    _ => tally.unreadable += 1,
                }
                path = dir.path().join(format!("crash-{}.h5", round + 1));
                acked = 0;
            }
        }
    }
    eprintln!("HDF5 kill -9 during appends: {tally:?}");
    let failed = tally.unreadable + tally.lost + tally.garbage;
    // Measured: about 1.3% of kills (docs/backends/hdf5.md); fail well above that.
    assert!(
        failed <= 2 + tally.rounds / 10,
        "too many kills damaged the store: {tally:?}"
    );
}

/// How much larger one-frame appends make a file (run by hand; the number is in
/// `docs/backends/hdf5.md`).
#[test]
#[ignore = "measurement, run by hand"]
fn file_size_after_one_frame_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.h5");
    let e = Hdf5Engine::open(&path, "default", false, Hdf5Config::default()).unwrap();
    let spec = |shape: Vec<u64>, chunks: Vec<u64>| ArraySpec {
        dtype: DType::F64,
        shape,
        chunks,
    };
    e.create_array("calc.energy", &spec(vec![0], vec![64]))
        .unwrap();
    e.create_array("arrays.positions", &spec(vec![0, 3], vec![64 * 100, 3]))
        .unwrap();
    let mut seed = 1u64;
    for n in 0..1000u64 {
        e.resize("calc.energy", &[n + 1]).unwrap();
        e.write_slab(
            "calc.energy",
            Slab {
                start: &[n],
                count: &[1],
            },
            &(n as f64).to_le_bytes(),
        )
        .unwrap();
        e.resize("arrays.positions", &[(n + 1) * 100, 3]).unwrap();
        let pos: Vec<u8> = (0..300)
            .flat_map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((seed >> 11) as f64 / (1u64 << 53) as f64).to_le_bytes()
            })
            .collect();
        let slab = Slab {
            start: &[n * 100, 0],
            count: &[100, 3],
        };
        e.write_slab("arrays.positions", slab, &pos).unwrap();
        e.commit(&attrs(n + 1)).unwrap();
    }
    drop(e);
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "1000 one-frame appends of 100 atoms: {size} bytes ({} per frame)",
        size / 1000
    );
}
