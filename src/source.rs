//! A loaded configuration file: where it came from, its text, and the mapping from byte
//! offsets to line:column that every finding and fix relies on.

use std::path::{Path, PathBuf};

/// Files larger than this are refused with a finding rather than read: no real MTA
/// configuration comes close, and reading it would only burn memory.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown to the user (relative to --root when one is given).
    pub display: PathBuf,
    /// Path on this machine, used for reading and for fixes.
    pub real: PathBuf,
    /// The text; invalid UTF-8 is replaced (and reported by the loader's caller).
    pub text: String,
    /// The exact bytes read when they differ from `text` (invalid UTF-8); see `original()`.
    /// Valid files are not kept twice: on a million-line control file the copy costs as
    /// much as the parse.
    raw: Option<Vec<u8>>,
    line_starts: Vec<usize>,
    /// True when the bytes were not valid UTF-8 (text holds a lossy copy).
    pub lossy: bool,
}

/// Why a file could not be loaded. Each variant names the file in its Display form.
impl SourceFile {
    /// A fix edit replacing `range` (byte offsets into `text`) with `replacement`; an empty
    /// range inserts. The one way checks build edits, so every edit names both paths.
    pub fn edit(
        &self,
        range: std::ops::Range<usize>,
        replacement: impl Into<String>,
    ) -> crate::finding::Edit {
        crate::finding::Edit {
            real_file: self.real.clone(),
            file: self.display.clone(),
            start: range.start,
            end: range.end,
            replacement: replacement.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum LoadError {
    Missing(PathBuf),
    Unreadable(PathBuf, String),
    NotAFile(PathBuf),
    TooLarge(PathBuf, u64),
    Binary(PathBuf, usize),
    /// Missing inside the snapshot; the path (through a symlink or `..`) wanted to leave it.
    Outside(PathBuf, String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing(p) => write!(f, "{}: no such file", p.display()),
            LoadError::Unreadable(p, e) => write!(f, "{}: cannot read: {e}", p.display()),
            LoadError::NotAFile(p) => write!(f, "{}: not a regular file", p.display()),
            LoadError::TooLarge(p, n) => write!(
                f,
                "{}: {n} bytes is larger than the {MAX_FILE_BYTES}-byte limit",
                p.display()
            ),
            LoadError::Binary(p, off) => write!(
                f,
                "{}: binary data (NUL byte at offset {off}), not a text configuration",
                p.display()
            ),
            LoadError::Outside(p, why) => write!(
                f,
                "{}: not read: {why}; copy the target into the snapshot for a full check",
                p.display()
            ),
        }
    }
}

impl LoadError {
    pub fn display_path(&self) -> &Path {
        match self {
            LoadError::Missing(p)
            | LoadError::Unreadable(p, _)
            | LoadError::NotAFile(p)
            | LoadError::TooLarge(p, _)
            | LoadError::Binary(p, _)
            | LoadError::Outside(p, _) => p,
        }
    }
}

impl SourceFile {
    /// Build from text already in memory (tests, generated configuration).
    pub fn from_text(display: impl Into<PathBuf>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let display = display.into();
        SourceFile {
            real: display.clone(),
            display,
            raw: None,
            line_starts: line_starts(&text),
            text,
            lossy: false,
        }
    }

    /// Read `real` on the live system, showing it as `display`; see `load_in`.
    pub fn load(real: &Path, display: &Path) -> Result<SourceFile, LoadError> {
        SourceFile::load_in(&crate::context::Root::live(), real, display)
    }

    /// Read `real` (a path under `root`), showing it as `display`. The read is contained in
    /// a snapshot root (crate::contain); special files are not opened; binary files (a NUL
    /// byte) and files over the limit are refused; invalid UTF-8 is decoded lossily and
    /// flagged in `lossy`.
    pub fn load_in(
        root: &crate::context::Root,
        real: &Path,
        display: &Path,
    ) -> Result<SourceFile, LoadError> {
        use crate::contain::OpenError;
        let shown = || display.to_path_buf();
        let bytes = root
            .open(real, MAX_FILE_BYTES)
            .and_then(|(f, meta)| crate::contain::read_capped(f, meta.len(), MAX_FILE_BYTES))
            .map_err(|e| match e {
                OpenError::Missing => LoadError::Missing(shown()),
                OpenError::Outside(esc) => LoadError::Outside(shown(), esc.to_string()),
                OpenError::NotAFile => LoadError::NotAFile(shown()),
                OpenError::TooLarge(n) => LoadError::TooLarge(shown(), n),
                OpenError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    LoadError::Missing(shown())
                }
                OpenError::Io(e) => LoadError::Unreadable(shown(), e.to_string()),
            })?;
        if let Some(off) = memchr_nul(&bytes) {
            return Err(LoadError::Binary(display.to_path_buf(), off));
        }
        let (text, raw, lossy) = match String::from_utf8(bytes) {
            Ok(s) => (s, None, false),
            Err(e) => {
                let bytes = e.into_bytes();
                (
                    String::from_utf8_lossy(&bytes).into_owned(),
                    Some(bytes),
                    true,
                )
            }
        };
        Ok(SourceFile {
            display: display.to_path_buf(),
            real: real.to_path_buf(),
            line_starts: line_starts(&text),
            text,
            raw,
            lossy,
        })
    }

    /// The exact bytes read, so a fix can refuse a file that changed since.
    pub fn original(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.text.as_bytes())
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line_idx + 1, col + 1)
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset).max(1)
    }

    /// Byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Text of 1-based `line`, without its line terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_start(line);
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// A location covering `start..end` of this file.
    pub fn location(&self, start: usize, end: usize) -> crate::finding::Location {
        let (line, column) = self.line_col(start);
        let (end_line, end_column) = self.line_col(end.max(start));
        crate::finding::Location {
            file: self.display.clone(),
            line,
            column,
            end_line,
            end_column,
        }
    }

    /// A location covering all of 1-based `line` (without its terminator).
    pub fn line_location(&self, line: usize) -> crate::finding::Location {
        let start = self.line_start(line);
        self.location(start, start + self.line_text(line).len())
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    // slice::contains on u8 is memchr; the byte-by-byte position() only runs on files that
    // do hold a NUL (rare), so multi-megabyte control files are scanned at memchr speed.
    if !bytes.contains(&0) {
        return None;
    }
    bytes.iter().position(|&b| b == 0)
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = Vec::with_capacity(text.len() / 40 + 1);
    v.push(0);
    // match_indices on a char uses memchr: several times faster than a byte loop on the
    // million-line control files (qmail morercpthosts/virtualdomains).
    v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = SourceFile::from_text("x", "ab\ncdé f\n");
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        // é is two bytes; column counts characters.
        assert_eq!(s.line_col(8), (2, 5));
        assert_eq!(s.line_text(2), "cdé f");
        assert_eq!(s.line_count(), 3);
    }
}
