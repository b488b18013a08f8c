//! Protocol version constants. Features are gated on the *negotiated* version, never on
//! crate versions.

/// The first protocol: handshake, store operations, status.
pub const HANDSHAKE: u32 = 1;

/// Backend options as a map in `Open`, packed column reads (`GetColumn::packed`,
/// `Response::Packed`), capability flags `atomic_batches` and `packed_columns`.
pub const OPTIONS_AND_PACKED: u32 = 2;

/// Live follow: `Request::Follow` (wait until a store has more rows than the client has
/// seen) answered with `Response::Committed` as soon as a commit makes it grow.
pub const FOLLOW: u32 = 3;

/// The newest protocol this build speaks.
pub const CURRENT: u32 = FOLLOW;

/// The oldest protocol this build still accepts from a peer.
pub const MIN_SUPPORTED: u32 = HANDSHAKE;

/// The crate version, sent in the handshake for diagnostics.
pub const PACKAGE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Negotiates the protocol both peers speak: the highest version inside both ranges.
///
/// Returns `None` when the ranges do not overlap.
pub fn negotiate(peer_min: u32, peer_max: u32) -> Option<u32> {
    let hi = peer_max.min(CURRENT);
    let lo = peer_min.max(MIN_SUPPORTED);
    (lo <= hi).then_some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_picks_highest_common_version() {
        assert_eq!(negotiate(1, 1), Some(1));
        assert_eq!(negotiate(1, 2), Some(2));
        assert_eq!(negotiate(1, 3), Some(FOLLOW));
        assert_eq!(negotiate(1, 9), Some(CURRENT));
        assert_eq!(negotiate(CURRENT + 1, CURRENT + 5), None);
    }
}
