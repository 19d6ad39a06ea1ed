//! `plesk check` / `plesk repair`: from the command line to the Plesk engine.
//!
//! Transitional: the Plesk engine still prints and returns exit codes itself (through the
//! `app` shim); it is being converted to return outcomes, after which this module resolves
//! its settings and calls `super::deliver`.

use crate::cli::PleskCommand;

pub fn run(c: PleskCommand) -> i32 {
    match c {
        PleskCommand::Check(a) => crate::plesk::check(&a),
        PleskCommand::Repair(a) => crate::plesk::repair(&a),
    }
}
