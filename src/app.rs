//! Transitional shim for the Plesk engine, which still picks its own exit codes. Delete it
//! when `plesk` returns outcomes (issue #12): nothing else may import it.

pub use crate::args::fail_on;

pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
