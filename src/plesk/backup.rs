//! The backup of a repair: every deleted row, whole (every column, serviceNodeId and any
//! the table has beyond those relaydoctor knows), as INSERT statements that restore them
//! with the mysql client (`mariadb psa < FILE`). Written row by row while the rows stream
//! from the server, so a million deleted rows never sit in memory; complete and fsynced
//! before anything changes; its last line is `-- end of backup` so a truncated file is
//! recognisable.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::connect::ident;
use super::model::{Schema, TABLE};
use super::values::sql_literal;

/// Rows per INSERT statement in the file.
const BATCH: usize = 500;

pub struct Backup {
    path: PathBuf,
    dir: PathBuf,
    w: BufWriter<File>,
    insert: String,
    in_batch: usize,
    pub rows: u64,
}

fn now_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // `YYYY-MM-DD HH:MM:SS` (UTC) -> `YYYYMMDDTHHMMSSZ` for a file name.
    let t: String = super::values::format_datetime(secs)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .map(|c| if c == ' ' { 'T' } else { c })
        .collect();
    format!("{t}Z")
}

impl Backup {
    /// Create a new file (never overwriting one) in `dir`.
    pub fn create(dir: &Path, db: &str, schema: &Schema) -> Result<Backup, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create backup directory {}: {e}", dir.display()))?;
        let path = dir.join(format!(
            "{db}.{TABLE}-{}-{}.sql",
            now_stamp(),
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create backup file {}: {e}", path.display()))?;
        let mut b = Backup {
            insert: format!(
                "INSERT INTO {} ({}) VALUES\n  ",
                ident(TABLE),
                schema.column_list("")
            ),
            path,
            dir: dir.to_path_buf(),
            w: BufWriter::new(file),
            in_batch: 0,
            rows: 0,
        };
        let header = format!(
            "-- relaydoctor backup: rows deleted from {db}.{TABLE}, every column\n\
             -- restore with: mariadb {db} < {}\n\
             SET SESSION sql_mode = 'ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION';\n",
            b.path.display()
        );
        b.write(header.as_bytes())?;
        Ok(b)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.w
            .write_all(bytes)
            .map_err(|e| format!("cannot write backup file {}: {e}", self.path.display()))
    }

    /// One whole row, its values in table column order.
    pub fn row(&mut self, values: &[Option<Vec<u8>>]) -> Result<(), String> {
        let mut s = if self.in_batch == 0 {
            self.insert.clone()
        } else {
            ",\n  ".to_string()
        };
        s.push_str(&row_values(values));
        self.in_batch += 1;
        self.rows += 1;
        if self.in_batch == BATCH {
            s.push_str(";\n");
            self.in_batch = 0;
        }
        self.write(s.as_bytes())
    }

    /// End the last statement, mark the file complete, fsync it and its directory.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        if self.in_batch > 0 {
            self.write(b";\n")?;
        }
        self.write(b"-- end of backup\n")?;
        let path = self.path.clone();
        let werr = |e: std::io::Error| format!("cannot write backup file {}: {e}", path.display());
        let file = self.w.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(werr)?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(path)
    }
}

/// `(v1, v2, ...)`: every value as a literal that round-trips any bytes.
pub fn row_values(values: &[Option<Vec<u8>>]) -> String {
    let v: Vec<String> = values.iter().map(|v| sql_literal(v.as_deref())).collect();
    format!("({})", v.join(", "))
}
