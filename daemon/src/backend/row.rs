//! Row hygiene shared by the store layer and the backends: repeated keys collapsed as a
//! Python dict built from pairs collapses them (first position, last value), in linear
//! time, so one row or one key list with 100k keys costs milliseconds, not seconds.
//!
//! Layer: part of [`crate::backend`] (the memory backend uses it directly); the store layer
//! above calls it on every incoming row.

use std::collections::{HashMap, HashSet};

use asebytes_protocol::{Key, Row};

/// Below this many keys a linear scan per key beats hashing.
const SMALL: usize = 16;

/// Collapses repeated keys: each key keeps the position of its first occurrence and the
/// value of its last.
pub fn dedup(row: Row) -> Row {
    if row.len() <= SMALL {
        return dedup_small(row);
    }
    let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(row.len());
    for (i, (k, _)) in row.iter().enumerate() {
        last.insert(k.as_slice(), i);
    }
    if last.len() == row.len() {
        return row;
    }
    // (first, last) occurrence of each key, in first-occurrence order.
    let mut plan = Vec::with_capacity(last.len());
    for (i, (k, _)) in row.iter().enumerate() {
        if let Some(j) = last.remove(k.as_slice()) {
            plan.push((i, j));
        }
    }
    let mut slots: Vec<Option<(Key, _)>> = row.into_iter().map(Some).collect();
    plan.into_iter()
        .map(|(first, last)| {
            let (k, v) = slots[first]
                .take()
                .expect("each first occurrence taken once");
            if last == first {
                (k, v)
            } else {
                let (_, v) = slots[last].take().expect("each last occurrence taken once");
                (k, v)
            }
        })
        .collect()
}

fn dedup_small(row: Row) -> Row {
    let mut out = Row::with_capacity(row.len());
    for (k, v) in row {
        match out.iter_mut().find(|(have, _)| *have == k) {
            Some(field) => field.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// `keys` without repeats, first occurrence kept.
pub fn unique(keys: &[Key]) -> Vec<Key> {
    if keys.len() <= SMALL {
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for k in keys {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        return out;
    }
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(keys.len());
    keys.iter()
        .filter(|k| seen.insert(k.as_slice()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use asebytes_protocol::value::{key, row};

    use super::*;

    /// The definition: a dict built from the pairs, in insertion order.
    fn oracle(r: &Row) -> Row {
        dedup_small(r.clone())
    }

    #[test]
    fn dedup_keeps_first_position_and_last_value_small_and_large() {
        assert_eq!(
            dedup(row([("a", "1"), ("b", "2"), ("a", "3")])),
            row([("a", "3"), ("b", "2")])
        );
        let mut pairs: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        pairs.push(("k3".into(), "late".into()));
        pairs.insert(0, ("k39".into(), "early".into()));
        pairs.push(("k0".into(), "again".into()));
        let r = row(pairs);
        let got = dedup(r.clone());
        assert_eq!(got, oracle(&r));
        assert_eq!(got.len(), 40);
        assert_eq!(got[0], (key("k39"), key("v39")));
        let distinct = row((0..40).map(|i| (format!("k{i}"), "v")));
        assert_eq!(dedup(distinct.clone()), distinct);
    }

    #[test]
    fn unique_keeps_first_occurrences_in_order() {
        let small = [key("b"), key("a"), key("b")];
        assert_eq!(unique(&small), [key("b"), key("a")]);
        let mut large: Vec<Key> = (0..50).map(|i| key(format!("k{}", i % 30))).collect();
        large.insert(0, key("k29"));
        let got = unique(&large);
        assert_eq!(got.len(), 30);
        assert_eq!(got[0], key("k29"));
        assert_eq!(got[1], key("k0"));
    }

    #[test]
    fn one_hundred_thousand_keys_take_linear_time() {
        // Quadratic de-duplication took 21 s of daemon CPU on this input in a release build
        // (issue 11), far more unoptimised; linear takes ~0.1 s, ~3 s unoptimised and loaded.
        let n = 100_000;
        let r = row((0..n).chain(0..n).map(|i| (format!("calc.k{i}"), "v")));
        let keys: Vec<Key> = r.iter().map(|(k, _)| k.clone()).collect();
        let start = Instant::now();
        assert_eq!(dedup(r).len(), n);
        assert_eq!(unique(&keys).len(), n);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(60), "took {took:?}");
        eprintln!("dedup + unique of 2 x {n} keys: {took:?}");
    }
}
