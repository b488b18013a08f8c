//! Process limits the daemon adjusts for itself: the soft limit on open descriptors.
//!
//! Layer: called once by [`crate::cli`] before serving. Every client connection costs the
//! daemon two descriptors (the socket and the handle shutdown uses to wake it) and every
//! LMDB store two more; the common soft limit of 1024 is reached by a few hundred
//! DataLoader workers. The hard limit is what the administrator allows, so the daemon
//! raises its soft limit to it (capped, so a huge hard limit does not make `close_range`
//! fallbacks and `select`-style code slow).

use std::io;

/// Never ask for more than this many descriptors.
const CEILING: libc::rlim_t = 1 << 20;

/// The soft and hard limits on open descriptors.
pub fn fd_limits() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, which is valid.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft limit on open descriptors to the hard limit (at most 2^20); returns the
/// soft limit now in force.
pub fn raise_fd_limit() -> io::Result<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, which is valid.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let want = lim.rlim_max.min(CEILING);
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    lim.rlim_cur = want;
    // SAFETY: setrlimit reads `lim`, which is valid.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit_or_the_ceiling() {
        let (_, hard) = fd_limits().unwrap();
        let now = raise_fd_limit().unwrap();
        assert_eq!(now, hard.min(CEILING).max(now));
        assert_eq!(fd_limits().unwrap().0, now);
    }
}
