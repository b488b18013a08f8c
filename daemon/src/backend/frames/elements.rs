//! Chemical symbols by atomic number, as `ase.data.chemical_symbols` lists them (`X` is 0),
//! for the formats that name atoms by symbol (extxyz `species`).
//!
//! Layer: a table shared by the read-only file backends.

/// `ase.data.chemical_symbols`.
pub const SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
];

/// The atomic number of `symbol` (exact spelling, `Cu` not `CU`).
pub fn atomic_number(symbol: &str) -> Option<i64> {
    SYMBOLS.iter().position(|s| *s == symbol).map(|z| z as i64)
}

/// Python's `str.capitalize()`: the first character upper case, the rest lower case.
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_map_to_numbers_as_ase_does() {
        assert_eq!(atomic_number("X"), Some(0));
        assert_eq!(atomic_number("Og"), Some(118));
        assert_eq!(atomic_number(&capitalize("CL")), Some(17));
        assert_eq!(atomic_number("Xx"), None);
    }
}
