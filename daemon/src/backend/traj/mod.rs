//! The traj backend (`*.traj`; read-only): ASE trajectories (the ULM container, [`ulm`])
//! read as ASE 3.29's `TrajectoryReader` reads them. Item 0 carries the header (`pbc`,
//! `numbers`, `masses`, `constraints`); a later item carries its own when the atoms
//! changed. Each frame: `positions`, `cell`, optional `tags`, `momenta`, `magmoms`
//! (→ `initial_magmoms`), `charges` (→ `initial_charges`), `info`, and the `calculator`
//! child's results through `SinglePointCalculator`. The item count is read at every
//! access, so a trajectory still being written is followed.
//!
//! Layer: a file backend under [`crate::store`], on the read-only frames core
//! ([`crate::backend::frames`]). `docs/backends/ase-files.md` says what is read how.

pub mod ulm;

use std::fs::File;
use std::path::{Path, PathBuf};

use asebytes_protocol::codec::{NdArray, Value};

use self::ulm::{Header, Item};
use super::frames::atoms::{ALL_PROPERTIES, AtomsFrame, calc_value, to_float_array};
use super::frames::json;
use super::frames::{Frame, FrameSource, FrameView, FramesBackend};
use super::{BackendEntry, Error, ErrorKind, LocationKind, OpenOptions, Result};

/// URI scheme and backend name.
pub const SCHEME: &str = "traj";
const TAG: &str = "ASE-Trajectory";

/// The traj line in the backend table.
pub const ENTRY: BackendEntry = BackendEntry {
    scheme: SCHEME,
    label: "ASE trajectory (read-only)",
    patterns: &["*.traj"],
    sniffed_patterns: &[],
    sniff: None,
    default_group: None,
    location: LocationKind::File,
    options: &[],
    open: |opts| Ok(Box::new(open(opts)?)),
    list_groups: |_| Ok(Vec::new()),
};

/// Opens a trajectory read-only.
pub fn open(opts: &OpenOptions) -> Result<FramesBackend<TrajSource>> {
    let path = PathBuf::from(&opts.path);
    let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    ulm::header(&file, &path, TAG)?;
    Ok(FramesBackend::new(
        SCHEME,
        format!("{SCHEME}://{}#{}", opts.path, opts.group),
        TrajSource { file, path },
    ))
}

/// An open trajectory file.
#[derive(Debug)]
pub struct TrajSource {
    file: File,
    path: PathBuf,
}

impl FrameSource for TrajSource {
    fn view(&self) -> Result<Box<dyn FrameView + '_>> {
        let header = ulm::header(&self.file, &self.path, TAG)?;
        Ok(Box::new(TrajView { src: self, header }))
    }
}

struct TrajView<'a> {
    src: &'a TrajSource,
    header: Header,
}

/// The atoms-level header: from item 0, or from an item that repeats it.
struct AtomsHeader {
    pbc: Option<Value>,
    numbers: Option<Value>,
    masses: Option<Value>,
    constraints: Option<Value>,
}

impl AtomsHeader {
    fn of(item: &Item, file: &File, path: &Path) -> Result<Self> {
        Ok(Self {
            pbc: item.get("pbc", file, path)?,
            numbers: item.get("numbers", file, path)?,
            masses: item.get("masses", file, path)?,
            constraints: item.get("constraints", file, path)?,
        })
    }
}

fn f64_of(v: &Value, what: &str) -> Result<NdArray> {
    to_float_array(v).ok_or_else(|| Error::corrupt(format!("{what} is not numeric")))
}

impl TrajView<'_> {
    fn build(&self, index: u64) -> Result<Frame> {
        let (file, path) = (&self.src.file, self.src.path.as_path());
        let item = ulm::item(file, path, &self.header, index)?;
        let head = if item.has("numbers") {
            AtomsHeader::of(&item, file, path)?
        } else {
            AtomsHeader::of(&ulm::item(file, path, &self.header, 0)?, file, path)?
        };
        let mut frame = AtomsFrame::default();
        let numbers = head
            .numbers
            .ok_or_else(|| Error::corrupt("no numbers in the trajectory header"))?;
        let numbers = f64_of(&numbers, "numbers")?;
        let ints: Vec<i64> = numbers
            .to_f64s()
            .unwrap_or_default()
            .iter()
            .map(|&x| x as i64)
            .collect();
        let n = ints.len() as u64;
        if let Some(p) = &head.pbc {
            let p = f64_of(p, "pbc")?.to_f64s().unwrap_or_default();
            let p: [f64; 3] = p
                .try_into()
                .map_err(|_| Error::corrupt("pbc is not three bools"))?;
            frame.pbc = p.map(|x| x != 0.0);
        }
        if let Some(c) = item.get("cell", file, path)? {
            let c = f64_of(&c, "cell")?.to_f64s().unwrap_or_default();
            frame.cell = c
                .try_into()
                .map_err(|_| Error::corrupt("the cell is not 3x3"))?;
        }
        let positions = match item.get("positions", file, path)? {
            Some(p) => f64_of(&p, "positions")?,
            None => NdArray::from_f64s(vec![n, 3], &vec![0.0; 3 * n as usize])
                .map_err(|e| Error::corrupt(e.to_string()))?,
        };
        let numbers =
            NdArray::from_elements(vec![n], &ints).map_err(|e| Error::corrupt(e.to_string()))?;
        frame.arrays.push(("numbers".into(), Value::Array(numbers)));
        frame
            .arrays
            .push(("positions".into(), Value::Array(positions)));
        // The order Atoms.__init__ adds them in.
        let optional = [
            ("tags", item.get("tags", file, path)?),
            ("masses", head.masses.clone()),
            ("initial_magmoms", item.get("magmoms", file, path)?),
            ("initial_charges", item.get("charges", file, path)?),
            ("momenta", item.get("momenta", file, path)?),
        ];
        for (name, value) in optional {
            let Some(v) = value.filter(|v| *v != Value::Nil) else {
                continue;
            };
            let a = f64_of(&v, name)?;
            let a = if name == "tags" {
                let t: Vec<i64> = a
                    .to_f64s()
                    .unwrap_or_default()
                    .iter()
                    .map(|&x| x as i64)
                    .collect();
                NdArray::from_elements(a.shape.clone(), &t)
                    .map_err(|e| Error::corrupt(e.to_string()))?
            } else {
                a
            };
            frame.arrays.push((name.into(), Value::Array(a)));
        }
        if let Some(Value::Map(info)) = item.get("info", file, path)?.map(json::revive) {
            frame.info = info;
        }
        if let Some(calc) = item.child("calculator") {
            for prop in ALL_PROPERTIES {
                if let Some(v) = calc.get(prop, file, path)?
                    && v != Value::Nil
                {
                    let v = calc_value(prop, json::revive(v)).map_err(Error::corrupt)?;
                    frame.calc.push(((*prop).into(), v));
                }
            }
        }
        match head.constraints {
            Some(Value::Str(s)) => {
                if let Value::List(cs) = json::parse(&s).map_err(Error::corrupt)? {
                    frame.constraints = cs.into_iter().map(json::revive).collect();
                }
            }
            None | Some(Value::Nil) => {}
            Some(other) => {
                return Err(Error::corrupt(format!(
                    "constraints are {other:?}, not JSON text"
                )));
            }
        }
        Ok(frame.into_frame())
    }
}

impl FrameView for TrajView<'_> {
    fn len(&self) -> u64 {
        self.header.nitems
    }

    fn frame(&self, index: u64) -> Result<Frame> {
        if index >= self.header.nitems {
            return Err(Error::new(
                ErrorKind::IndexOutOfRange,
                format!("Index {index} out of range [0, {})", self.header.nitems),
            ));
        }
        self.build(index).map_err(|e| {
            Error::new(
                e.kind,
                format!("{}: frame {index}: {}", self.src.path.display(), e.message),
            )
        })
    }
}
