//! Thin entry point: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = relaydoctor::cli::Cli::parse();
    // Deeply nested configuration (long $name chains, include trees) must not overflow the
    // small default main-thread stack; a panic anywhere becomes exit 2, never 101.
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                relaydoctor::commands::run(cli)
            }))
        });
    let code = match worker.map(|h| h.join()) {
        Ok(Ok(Ok(code))) => code,
        _ => {
            eprintln!(
                "relaydoctor: internal error (please report it with the input that caused it)"
            );
            2
        }
    };
    std::process::exit(code);
}
