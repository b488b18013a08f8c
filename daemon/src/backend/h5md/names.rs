//! Where each flat column key lives in the H5MD tree (`asebytes-behaviour.md` §4.3), and
//! back: the name map znh5md and the reference share (`position`↔`positions`,
//! `species`↔`numbers`, `potential_energy`↔`energy`, ...), the `ASE_ENTRY_ORIGIN` of each
//! element, and the units attached to its `value`.
//!
//! Layer: pure naming, no HDF5; used by [`super::engine`] and [`super::tree`].

/// Attribute of an element group naming the ASE namespace its data came from (znh5md).
pub const ORIGIN_ATTR: &str = "ASE_ENTRY_ORIGIN";
/// Attribute of an element group holding the flat key, written only where the element's
/// name alone would not say it (two keys that map to one path, names HDF5 cannot hold).
pub const KEY_ATTR: &str = "ASEBYTES_KEY";
/// The column holding `constraints` is stored as this `info` element (the reference's).
pub const CONSTRAINTS_ELEMENT: &str = "constraints_json";
/// The column the layout moves to `/connectivity/<g>/bonds` (+ `bond_orders`).
pub const CONNECTIVITY: &str = "info.connectivity";

/// H5MD element name ↔ ASE name.
const NAME_MAP: &[(&str, &str)] = &[
    ("position", "positions"),
    ("force", "forces"),
    ("mass", "masses"),
    ("charge", "charges"),
    ("potential_energy", "energy"),
    ("species", "numbers"),
    ("velocity", "velocities"),
];

/// Elements H5MD defines under `/particles` (a `calc.*` result with one of these names
/// goes there; every other `calc.*` result is an observable).
const PARTICLE_ELEMENTS: &[&str] = &[
    "position", "velocity", "force", "mass", "species", "id", "charge",
];

/// Names under `/particles/<g>` that are not elements of their own.
const RESERVED_PARTICLE_NAMES: &[&str] = &["box"];

/// Units stored on `value`, by ASE name.
const UNITS: &[(&str, &str)] = &[
    ("positions", "Angstrom"),
    ("forces", "eV/Angstrom"),
    ("stress", "eV/Angstrom^3"),
    ("velocities", "Angstrom/fs"),
    ("cell", "Angstrom"),
    ("energy", "eV"),
];

/// The H5MD name of an ASE name.
pub fn to_h5md(ase: &str) -> &str {
    NAME_MAP
        .iter()
        .find(|(_, a)| *a == ase)
        .map_or(ase, |(h, _)| h)
}

/// The ASE name of an H5MD element name.
pub fn to_ase(h5md: &str) -> &str {
    NAME_MAP
        .iter()
        .find(|(h, _)| *h == h5md)
        .map_or(h5md, |(_, a)| a)
}

/// Where a column's element goes by the name map, before any clash is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Element group path from the file root, e.g. `particles/atoms/position`.
    pub path: String,
    /// `ASE_ENTRY_ORIGIN` (`atoms`, `arrays`, `calc`, `info`).
    pub origin: &'static str,
    /// Unit of `value`, if any.
    pub unit: Option<&'static str>,
}

/// The element a flat key maps to in group `g`, or `None` for keys the tree has no
/// element for (the layout's own `_` arrays, keys outside the namespaces).
pub fn place(key: &str, g: &str) -> Option<Placement> {
    let (path, origin, ase) = match key {
        "cell" => (format!("particles/{g}/box/edges"), "atoms", "cell"),
        "pbc" => (format!("particles/{g}/box/pbc"), "atoms", "pbc"),
        "constraints" => (
            format!("observables/{g}/{CONSTRAINTS_ELEMENT}"),
            "info",
            CONSTRAINTS_ELEMENT,
        ),
        _ => {
            let (ns, name) = key.split_once('.')?;
            let h = to_h5md(name);
            match ns {
                "arrays" => {
                    let origin = if matches!(name, "positions" | "numbers") {
                        "atoms"
                    } else {
                        "arrays"
                    };
                    (format!("particles/{g}/{h}"), origin, name)
                }
                "calc" if PARTICLE_ELEMENTS.contains(&h) => {
                    (format!("particles/{g}/{h}"), "calc", name)
                }
                "calc" => (format!("observables/{g}/{h}"), "calc", name),
                "info" => (format!("observables/{g}/{name}"), "info", name),
                _ => return None,
            }
        }
    };
    let unit = UNITS.iter().find(|(a, _)| *a == ase).map(|(_, u)| *u);
    Some(Placement { path, origin, unit })
}

/// The element path a key takes when its mapped path is taken by another key or cannot
/// be an HDF5 name: `<top>/<g>/<key>` (the whole flat key; [`KEY_ATTR`] says which), or
/// `<top>/<g>/key_<hex>` for a key that is no HDF5 name itself (`""`, `.`, `..`).
pub fn fallback_path(key: &str, mapped: &Placement, g: &str) -> String {
    let top = mapped.path.split('/').next().unwrap_or("observables");
    if key.is_empty() || key == "." || key == ".." || key.contains('/') {
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        return format!("{top}/{g}/key_{hex}");
    }
    format!("{top}/{g}/{key}")
}

/// Where a key outside the ASE namespaces goes (any `ObjectIO` key): an `info`
/// observable named by the whole key, tagged with [`KEY_ATTR`] (znh5md reads it into
/// `atoms.info`).
pub fn place_other(key: &str, g: &str) -> Placement {
    let generic = Placement {
        path: format!("observables/{g}/{key}"),
        origin: "info",
        unit: None,
    };
    Placement {
        path: fallback_path(key, &generic, g),
        ..generic
    }
}

/// Whether the mapped element path can be used as it is: every part a plain HDF5 name
/// and nothing the tree reserves.
pub fn plain(p: &Placement, g: &str) -> bool {
    let name = p.path.rsplit('/').next().unwrap_or("");
    let reserved = p.path.starts_with(&format!("particles/{g}/"))
        && p.path.matches('/').count() == 2
        && RESERVED_PARTICLE_NAMES.contains(&name);
    !reserved
        && p.path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// The flat key of an element found at `path` (relative to the root) whose origin
/// attribute is `origin`, as the reference and znh5md read it: under `/particles`
/// `calc` origin → `calc.*`, `info` → `info.*`, anything else `arrays.*`; under
/// `/observables` `info` origin → `info.*`, anything else `calc.*`; the box elements are
/// `cell`/`pbc`; the constraints element is `constraints`.
pub fn key_of(path: &str, g: &str, origin: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["particles", grp, "box", "edges"] if *grp == g => Some("cell".into()),
        ["particles", grp, "box", "pbc"] if *grp == g => Some("pbc".into()),
        ["particles", grp, name] if *grp == g => {
            let ase = to_ase(name);
            Some(match origin {
                Some("calc") => format!("calc.{ase}"),
                Some("info") => format!("info.{ase}"),
                _ => format!("arrays.{ase}"),
            })
        }
        ["observables", grp, name] if *grp == g => match origin {
            Some("info") if *name == CONSTRAINTS_ELEMENT => Some("constraints".into()),
            Some("info") => Some(format!("info.{name}")),
            Some("arrays") => Some(format!("arrays.{}", to_ase(name))),
            _ => Some(format!("calc.{}", to_ase(name))),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_map_goes_both_ways_as_znh5md_reads_it() {
        let cases = [
            ("arrays.positions", "particles/g/position", "atoms"),
            ("arrays.numbers", "particles/g/species", "atoms"),
            ("arrays.momenta", "particles/g/momenta", "arrays"),
            ("calc.forces", "particles/g/force", "calc"),
            ("calc.energy", "observables/g/potential_energy", "calc"),
            ("calc.stress", "observables/g/stress", "calc"),
            ("info.label", "observables/g/label", "info"),
            ("cell", "particles/g/box/edges", "atoms"),
            ("pbc", "particles/g/box/pbc", "atoms"),
            ("constraints", "observables/g/constraints_json", "info"),
        ];
        for (key, path, origin) in cases {
            let p = place(key, "g").unwrap();
            assert_eq!((p.path.as_str(), p.origin), (path, origin), "{key}");
            assert_eq!(key_of(path, "g", Some(origin)).as_deref(), Some(key));
        }
        assert_eq!(place("calc.energy", "g").unwrap().unit, Some("eV"));
        assert_eq!(place("_n_atoms", "g"), None);
    }

    #[test]
    fn names_hdf5_cannot_hold_or_the_tree_reserves_are_not_plain() {
        assert!(!plain(&place("info.", "g").unwrap(), "g"));
        assert!(!plain(&place("info..", "g").unwrap(), "g"));
        assert!(!plain(&place("arrays.box", "g").unwrap(), "g"));
        assert!(plain(&place("info.box", "g").unwrap(), "g"));
        let p = place("info.", "g").unwrap();
        assert_eq!(fallback_path("info.", &p, "g"), "observables/g/info.");
    }
}
