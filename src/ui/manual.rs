//! A manual page shown on a terminal, as `git help -m` shows one: through man(1), which
//! formats it for the terminal's width and pages it with `$MANPAGER` or `$PAGER`.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use super::{Result, XoneError};

/// Shows the page `name` (e.g. `xone-requirement-list.1`) written in `roff`. `Ok(false)` when
/// there is no man program to show it with.
pub fn show(name: &str, roff: &[u8]) -> Result<bool> {
    let file = Scratch(std::env::temp_dir().join(format!("{}-{name}", std::process::id())));
    std::fs::write(&file.0, roff)
        .map_err(|e| XoneError::internal(format!("cannot write {}", file.0.display())).cause(e))?;
    // `-l`: a local file, not a page to look up in the manual path (man-db and mandoc).
    match Command::new("man").arg("-l").arg(&file.0).status() {
        Ok(status) if status.success() => Ok(true),
        Ok(status) => Err(XoneError::internal(format!(
            "man {} failed ({status})",
            file.0.display()
        ))
        .hint(
            "print the page with `xone man … | less`, or write them all with `xone man --out DIR`",
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(XoneError::internal("cannot start man").cause(e)),
    }
}

/// A file removed when it goes out of scope.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
