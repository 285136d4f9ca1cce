//! A manual page shown on a terminal, as `git help -m` shows one: through man(1), which
//! formats it for the terminal's width and pages it with `$MANPAGER` or `$PAGER`.

use std::io::{ErrorKind, Write};
use std::process::Command;

use super::{Result, XoneError};

/// Shows the page `name` (e.g. `xone-requirement-list.1`) written in `roff`. `Ok(false)` when
/// there is no man program to show it with.
pub fn show(name: &str, roff: &[u8]) -> Result<bool> {
    // A file of its own (made new, never one that was there), removed when this returns.
    let mut file = tempfile::Builder::new()
        .prefix("xone-")
        .suffix(&format!("-{name}"))
        .tempfile()
        .map_err(|e| XoneError::internal("cannot make a file for the page").cause(e))?;
    file.write_all(roff).and_then(|_| file.flush()).map_err(|e| {
        XoneError::internal(format!("cannot write {}", file.path().display())).cause(e)
    })?;
    // `-l`: a local file, not a page to look up in the manual path (man-db and mandoc).
    match Command::new("man").arg("-l").arg(file.path()).status() {
        Ok(status) if status.success() => Ok(true),
        Ok(status) => Err(XoneError::internal(format!("man failed on {name} ({status})")).hint(
            "print the page with `xone man … | less`, or write them all with `xone man --out DIR`",
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(XoneError::internal("cannot start man").cause(e)),
    }
}
