//! `asebytesd install-service`: the systemd user units (a socket unit for socket
//! activation and the service that runs the daemon command).
//!
//! Layer: the top, with the rest of [`crate::cli`]; only writes text files.

use std::ffi::OsString;
use std::path::PathBuf;

/// `asebytesd install-service`.
pub(super) fn install_service(print: bool, daemon_command: &[OsString]) -> i32 {
    let units = [
        ("asebytesd.socket", socket_unit()),
        ("asebytesd.service", service_unit(daemon_command)),
    ];
    if print {
        for (name, text) in &units {
            println!("# {name}\n{text}");
        }
        return 0;
    }
    let dir = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                eprintln!("asebytesd: neither XDG_CONFIG_HOME nor HOME is set; use --print");
                return 1;
            }
        },
    }
    .join("systemd/user");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("asebytesd: cannot create {}: {e}", dir.display());
        return 1;
    }
    for (name, text) in &units {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("asebytesd: cannot write {}: {e}", path.display());
            return 1;
        }
        println!("wrote {}", path.display());
    }
    println!(
        "enable it with: systemctl --user daemon-reload && systemctl --user enable --now asebytesd.socket"
    );
    0
}

/// Where systemd puts the socket: the default path for a user session (`%t` is
/// `$XDG_RUNTIME_DIR`).
const UNIT_SOCKET: &str = "%t/asebytes/asebytesd.sock";

fn socket_unit() -> String {
    format!(
        "[Unit]\n\
         Description=asebytes storage daemon socket\n\
         \n\
         [Socket]\n\
         ListenStream={UNIT_SOCKET}\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

fn service_unit(daemon_command: &[OsString]) -> String {
    let mut exec: Vec<String> = daemon_command
        .iter()
        .map(|a| systemd_quote(&a.to_string_lossy()))
        .collect();
    exec.extend(["run".into(), "--socket".into(), UNIT_SOCKET.into()]);
    format!(
        "[Unit]\n\
         Description=asebytes storage daemon\n\
         Requires=asebytesd.socket\n\
         After=asebytesd.socket\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         Restart=on-failure\n",
        exec.join(" ")
    )
}

/// Quotes one `ExecStart=` word: specifiers and variables are escaped, and words with
/// spaces or quotes are double-quoted.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if !escaped.is_empty()
        && !escaped.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_unit_quotes_the_command_and_uses_socket_activation() {
        let unit = service_unit(&[
            "/opt/my env/python3".into(),
            "-m".into(),
            "asebytes.daemon".into(),
        ]);
        assert!(unit.contains("ExecStart=\"/opt/my env/python3\" -m asebytes.daemon run --socket %t/asebytes/asebytesd.sock"));
        assert!(socket_unit().contains("ListenStream=%t/asebytes/asebytesd.sock"));
        assert_eq!(systemd_quote("50%"), "50%%");
    }
}
