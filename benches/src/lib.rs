//! Shared fixtures of the criterion benches in `benches/benches/`: rows shaped like one
//! ethanol frame as the object tier stores it (field names and encoded value sizes).

use asebytes_protocol::Row;
use serde_bytes::ByteBuf;

/// Field names and encoded sizes of one 9-atom ethanol frame.
pub const ETHANOL_FIELDS: &[(&str, usize)] = &[
    ("arrays.numbers", 117),
    ("arrays.positions", 261),
    ("calc.energy", 9),
    ("calc.forces", 261),
    ("calc.stress", 93),
    ("cell", 117),
    ("info.step", 3),
    ("pbc", 42),
];

/// Row `i`: every field filled with a byte derived from `i`, so rows differ.
pub fn ethanol_row(i: usize) -> Row {
    ETHANOL_FIELDS
        .iter()
        .map(|(k, len)| {
            (
                ByteBuf::from(k.as_bytes().to_vec()),
                ByteBuf::from(vec![(i % 251) as u8; *len]),
            )
        })
        .collect()
}

/// `n` ethanol rows.
pub fn ethanol_rows(n: usize) -> Vec<Option<Row>> {
    (0..n).map(|i| Some(ethanol_row(i))).collect()
}
