//! The one writer of a command's output (standard output). A reader that went away
//! (`kubeboot token list -o json | head -1`) ends the command as it ends kubectl or any
//! Unix tool, quietly and with the status a SIGPIPE gives (141), instead of a panic; any
//! other failure to write is said on standard error.

use std::io::Write;

/// The exit status of a process a closed pipe ended (128 + SIGPIPE).
pub const CLOSED_PIPE_STATUS: i32 = 141;

/// Writes `text` to standard output, as it is.
pub fn write(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        stopped(&e);
    }
}

/// Ends the process after standard output failed.
fn stopped(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_PIPE_STATUS);
    }
    // Standard error may be gone too; nothing is left to tell then.
    let _ = writeln!(
        std::io::stderr(),
        "error: cannot write to standard output: {e}"
    );
    std::process::exit(1);
}

/// `print!` through [`write`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
