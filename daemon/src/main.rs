//! The standalone `asebytesd` binary: a thin shell over [`asebytes_daemon::cli`], which the
//! Python extension runs too (`python -m asebytes.daemon`).

fn main() {
    std::process::exit(asebytes_daemon::cli::main());
}
