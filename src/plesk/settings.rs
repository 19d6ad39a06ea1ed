//! What the command layer resolves from the command line for the Plesk commands: plain,
//! validated values, so nothing under `plesk/` sees `cli` types.

use std::path::PathBuf;
use std::time::Duration;

use crate::finding::Severity;

/// Default for connect, read and write timeouts (`--timeout`): a database that accepts the
/// connection and never answers must not hang cron or Nagios.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the psa credentials come from (see credentials.rs for the order).
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// Root of the Plesk server's files (`/` on the server itself).
    pub root: PathBuf,
    pub db_url: Option<String>,
    /// `RELAYDOCTOR_DB_URL`, read by the command layer.
    pub env_url: Option<String>,
    pub dsn_file: Option<PathBuf>,
    /// Connect and write timeout, and the read timeout of `plesk check`.
    pub timeout: Duration,
    /// Read timeout: how long one statement may keep the server silent. `plesk check`
    /// uses `timeout`; a repair's REPAIR TABLE and bulk delete can take minutes on a large
    /// table, so the repair gets [`REPAIR_READ_TIMEOUT`] unless `timeout` is longer.
    pub read_timeout: Duration,
}

/// See [`DbSettings::read_timeout`].
pub const REPAIR_READ_TIMEOUT: Duration = Duration::from_secs(3600);

impl Default for DbSettings {
    fn default() -> DbSettings {
        DbSettings {
            root: PathBuf::from("/"),
            db_url: None,
            env_url: None,
            dsn_file: None,
            timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
    Nagios,
}

/// `relaydoctor plesk check`.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub db: DbSettings,
    pub format: CheckFormat,
    pub color: bool,
    /// Lowest severity that makes the run fail (exit 1).
    pub fail_on: Severity,
    /// Show a progress spinner on stderr (text output on a terminal, not --quiet).
    pub progress: bool,
}

/// `relaydoctor plesk repair`.
#[derive(Debug, Clone)]
pub struct RepairSettings {
    pub db: DbSettings,
    pub apply: bool,
    pub include_whitelist: bool,
    pub backup_dir: PathBuf,
    pub json: bool,
    pub color: bool,
    pub progress: bool,
}
