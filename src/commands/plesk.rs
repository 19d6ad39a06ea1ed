//! `plesk check` / `plesk repair`: from the command line to the Plesk engine's settings,
//! and its outcome to [`super::deliver`].

use std::time::Duration;

use crate::args::{self, Delivery};
use crate::cli::{DbArgs, PleskCheckArgs, PleskCommand, PleskFormat, PleskRepairArgs};
use crate::plesk::settings::REPAIR_READ_TIMEOUT;
use crate::plesk::{self, CheckFormat, CheckSettings, DbSettings, RepairSettings};

pub fn run(c: PleskCommand, host_name: Option<&str>) -> i32 {
    match c {
        PleskCommand::Check(a) => check(&a, host_name),
        PleskCommand::Repair(a) => repair(&a, host_name),
    }
}

fn db(a: &DbArgs) -> DbSettings {
    let timeout = Duration::from_secs_f64(a.timeout);
    DbSettings {
        root: a.root.clone().unwrap_or_else(|| "/".into()),
        db_url: a.db_url.clone(),
        env_url: std::env::var(crate::plesk::credentials::ENV_URL).ok(),
        dsn_file: a.dsn_file.clone(),
        timeout,
        read_timeout: timeout,
    }
}

fn host(a: &DbArgs, host_name: Option<&str>) -> Option<crate::host::Host> {
    Some(args::host(host_name, a.root.as_deref()))
}

fn check(a: &PleskCheckArgs, host_name: Option<&str>) -> i32 {
    let format = match a.format {
        PleskFormat::Text => CheckFormat::Text,
        PleskFormat::Json => CheckFormat::Json,
        PleskFormat::Nagios => CheckFormat::Nagios,
    };
    let settings = CheckSettings {
        db: db(&a.db),
        format,
        color: args::color(a.color.color),
        fail_on: args::fail_on(a.fail_on),
        progress: !a.quiet,
    };
    let how = Delivery {
        nagios: format == CheckFormat::Nagios,
        quiet: a.quiet,
        host: host(&a.db, host_name),
        json: format == CheckFormat::Json,
        ..Delivery::default()
    };
    let result = plesk::check(&settings).map(|o| o.json(format == CheckFormat::Json));
    super::deliver(result, &how)
}

fn repair(a: &PleskRepairArgs, host_name: Option<&str>) -> i32 {
    let json = a.format == crate::cli::Format::Json;
    let mut db = db(&a.db);
    // REPAIR TABLE and the bulk delete of a large table keep the server silent for longer
    // than a check's timeout.
    db.read_timeout = db.read_timeout.max(REPAIR_READ_TIMEOUT);
    let settings = RepairSettings {
        db,
        apply: a.apply,
        include_whitelist: a.include_whitelist,
        backup_dir: a.backup_dir.clone(),
        json,
        color: args::color(a.color.color),
        progress: true,
    };
    // Said while the work goes on: the backup path must be known even if the run dies.
    let mut notify = |m: &str| eprintln!("relaydoctor: {m}");
    let result = plesk::repair(&settings, &mut notify).map(|o| o.json(json));
    let how = Delivery {
        host: host(&a.db, host_name),
        ..Delivery::default()
    };
    super::deliver(result, &how)
}
