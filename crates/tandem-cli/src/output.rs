//! Standard output that behaves in a pipeline: when the reader goes away (`tandem ... | head`),
//! the command stops quietly instead of panicking.
use std::io::{ErrorKind, Write};

/// Writes `text` to standard output. A closed pipe ends the process with the status a shell
/// gives a command killed by SIGPIPE (141); other write errors are ignored.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
    }
}

/// Like `println!`, through [`print`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
