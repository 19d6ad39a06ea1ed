//! The one finding type every checker produces, and its severity scale.

use serde::Serialize;
use std::path::PathBuf;

use crate::catalogue;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Mta {
    Postfix,
    Exim,
    Qmail,
    Plesk,
}

impl Mta {
    pub fn as_str(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
            Mta::Qmail => "qmail",
            Mta::Plesk => "plesk",
        }
    }
}

/// Where a finding points. Lines and columns are 1-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// One byte-range replacement in a file. `file` is the real path on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    #[serde(skip)]
    pub real_file: PathBuf,
    pub file: PathBuf,
    pub start: usize,
    pub end: usize,
    pub replacement: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applicability {
    /// Mechanical and behaviour-preserving apart from the problem it fixes: `--fix` applies it.
    Safe,
    /// Changes behaviour in a way the admin must review: shown, never applied automatically.
    Unsafe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub applicability: Applicability,
    pub description: String,
    pub edits: Vec<Edit>,
}

impl Fix {
    /// A mechanical fix that `--fix` applies.
    pub fn safe(description: impl Into<String>, edits: Vec<Edit>) -> Fix {
        Fix {
            applicability: Applicability::Safe,
            description: description.into(),
            edits,
        }
    }

    /// A fix that changes behaviour: shown by `--diff`, never applied by `--fix`.
    pub fn review(description: impl Into<String>, edits: Vec<Edit>) -> Fix {
        Fix {
            applicability: Applicability::Unsafe,
            description: description.into(),
            edits,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: String,
    pub name: String,
    pub category: String,
    pub severity: Severity,
    pub mta: Mta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl Finding {
    /// A finding for catalogue rule `code`; name, category and severity come from the
    /// catalogue so that code and documentation cannot disagree.
    ///
    /// Panics in debug builds on an unknown code (a programming error caught by the tests);
    /// release builds fall back to a generic entry rather than crash on a user's machine.
    pub fn new(code: &str, mta: Mta, message: impl Into<String>) -> Finding {
        let rule = catalogue::get(code);
        debug_assert!(rule.is_some(), "rule {code} is not in the catalogue");
        let (name, category, severity) = match rule {
            Some(r) => (r.name.clone(), r.category.clone(), r.severity),
            None => ("unknown-rule".into(), "syntax".into(), Severity::Error),
        };
        Finding {
            code: code.to_string(),
            name,
            category,
            severity,
            mta,
            service: None,
            location: None,
            message: elide_long_words(message.into()),
            help: None,
            fix: None,
        }
    }

    pub fn at(mut self, location: Location) -> Finding {
        self.location = Some(location);
        self
    }

    pub fn service(mut self, service: impl Into<String>) -> Finding {
        self.service = Some(service.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Finding {
        self.help = Some(elide_long_words(help.into()));
        self
    }

    pub fn fix(mut self, fix: Fix) -> Finding {
        self.fix = Some(fix);
        self
    }

    /// Severity may be raised or lowered from the catalogue default where the context
    /// warrants it (e.g. a problem on the public port-25 listener is worse).
    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    /// Sort key: file, line, column, code.
    pub fn sort_key(&self) -> (String, usize, usize, String) {
        match &self.location {
            Some(l) => (
                l.file.display().to_string(),
                l.line,
                l.column,
                self.code.clone(),
            ),
            None => (String::new(), 0, 0, self.code.clone()),
        }
    }
}

/// Words longer than this are not quoted in messages (a 30 MB value pasted on one line was
/// repeated in full in every finding about it).
const LONGEST_QUOTED_WORD: usize = 400;

/// `text` with every word (a run without whitespace) longer than [`LONGEST_QUOTED_WORD`]
/// replaced by a note of its length. The word goes whole, never cut: output is scrubbed of
/// secrets after rendering, and a cut password would no longer be recognised and masked.
pub fn elide_long_words(text: String) -> String {
    let long = |w: &str| w.len() > LONGEST_QUOTED_WORD;
    if !text.split_whitespace().any(long) {
        return text;
    }
    let mut out = String::with_capacity(LONGEST_QUOTED_WORD * 2);
    let mut rest = text.as_str();
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if long(word) {
            // Quotes and punctuation around the word stay, so the sentence still reads.
            let core = word.trim_start_matches(['`', '"', '\'', '(', '<', '[', '{']);
            let lead = &word[..word.len() - core.len()];
            let core =
                core.trim_end_matches(['`', '"', '\'', ')', '>', ']', '}', ',', ':', ';', '.']);
            let tail = &word[lead.len() + core.len()..];
            out.push_str(&format!(
                "{lead}[{} characters, not shown]{tail}",
                core.chars().count()
            ));
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod elide_tests {
    #[test]
    fn long_words_go_whole() {
        let long = "x".repeat(500);
        let got = super::elide_long_words(format!("a `{long}` b\nc"));
        assert_eq!(got, "a `[500 characters, not shown]` b\nc");
        assert_eq!(super::elide_long_words("a  b".into()), "a  b");
    }
}
