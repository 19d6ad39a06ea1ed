//! Plesk: the smtp_poplocks table and mail relay settings in the psa database.

use crate::cli::{PleskCheckArgs, PleskRepairArgs};

/// `relaydoctor plesk check`; returns the process exit code.
pub fn check(_args: &PleskCheckArgs) -> i32 {
    eprintln!("relaydoctor: plesk check is not implemented yet");
    2
}

/// `relaydoctor plesk repair`; returns the process exit code.
pub fn repair(_args: &PleskRepairArgs) -> i32 {
    eprintln!("relaydoctor: plesk repair is not implemented yet");
    2
}
