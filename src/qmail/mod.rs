//! Qmail: discovery, parsing, effective configuration, relay policy and checks.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::Finding;
use crate::relay::{Decision, Query};

/// One Qmail configuration to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Real path of the configuration (directory or file).
    pub path: PathBuf,
}

/// Configurations of this MTA on the live system or snapshot.
pub fn discover(_ctx: &Context, _findings: &mut Vec<Finding>) -> Vec<Target> {
    Vec::new()
}

/// Whether an explicitly named path (real) is a Qmail configuration.
pub fn detect(_ctx: &Context, _path: &Path) -> Option<Target> {
    None
}

pub fn lint(_ctx: &Context, _target: &Target) -> Vec<Finding> {
    Vec::new()
}

pub fn simulate(_ctx: &Context, _target: &Target, _q: &Query) -> Result<Vec<Decision>, String> {
    Ok(Vec::new())
}
pub mod cdb;
pub mod parse;
