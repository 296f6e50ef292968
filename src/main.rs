//! The `facestudio` command line: parses arguments and calls one library function per subcommand.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    quiet_panics();
    cpu_by_default();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so a write to a closed pipe (`facestudio dataset stats … | head`) would
/// be an error (or a panic in `println!`). Unix tools end quietly instead.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// burn places restored optimiser state on its default device, the GPU in a build with wgpu:
/// resuming a CPU run would start Vulkan for nothing (or fail without a driver). Every device
/// facestudio uses is named explicitly, so the default may as well be the CPU.
fn cpu_by_default() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
}

/// A panic (a bug, or a library's on input it should have refused) is reported as one line
/// naming the thread, not a library's panic text with a backtrace hint; the worker that caught it
/// turns it into an error of its own (the trainer: an error event and a failed exit).
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        // A parser's panic on a bad file becomes the caller's error; nothing to say here.
        if facestudio::guard::panic_is_expected() {
            return;
        }
        let message = facestudio::guard::panic_message(info.payload());
        let thread = std::thread::current();
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "error: internal error in thread {}: {message}{place} (please report it)",
            thread.name().unwrap_or("unnamed")
        );
    }));
}
