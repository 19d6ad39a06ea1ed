//! What a command hands back to the command layer (`commands/`).
//!
//! Engines (postfix, exim, qmail, plesk, explain, report, and later dns/probe) never print and
//! never choose an exit code: they return an [`Outcome`] or a [`Failure`]. The command layer
//! alone prints, scrubs secrets, writes `-o` files and maps [`Status`] to the process exit code.

/// How a run ended, in words the command layer turns into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing at or above the failure threshold.
    Clean,
    /// Findings at or above the threshold (or, for repair dry runs, work to do).
    Findings,
    /// The command did its main work but part of it failed (e.g. one `--fix` write was
    /// refused); the output is still printed.
    PartialFailure,
    /// A Nagios plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Nagios(u8),
}

/// A finished command: what to print on stdout, what to say on stderr, and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Rendered in the format the user asked for. May be empty.
    pub stdout: String,
    /// Messages for stderr after `stdout` (the command layer prefixes `relaydoctor: `).
    pub notes: Vec<String>,
    pub status: Status,
    /// Secret values known to the engine (passwords read from configuration or the
    /// database credentials) that must be masked in everything printed.
    pub secrets: Vec<String>,
    /// Whether `--quiet` may suppress `stdout` (true when healthy: Clean / Nagios OK).
    pub healthy: bool,
    /// `stdout` is one of relaydoctor's JSON objects: the command layer adds the `host`
    /// object to it.
    pub json: bool,
}

impl Outcome {
    pub fn new(stdout: impl Into<String>, status: Status) -> Outcome {
        let healthy = matches!(status, Status::Clean | Status::Nagios(0));
        Outcome {
            stdout: stdout.into(),
            notes: Vec::new(),
            status,
            secrets: Vec::new(),
            healthy,
            json: false,
        }
    }

    /// Mark `stdout` as a relaydoctor JSON object (when `json` is true).
    pub fn json(mut self, json: bool) -> Outcome {
        self.json = json;
        self
    }

    /// Clean when `fails` is false, else Findings.
    pub fn findings(stdout: impl Into<String>, fails: bool) -> Outcome {
        Outcome::new(
            stdout,
            if fails {
                Status::Findings
            } else {
                Status::Clean
            },
        )
    }

    pub fn note(mut self, note: impl Into<String>) -> Outcome {
        self.notes.push(note.into());
        self
    }

    pub fn secrets(mut self, secrets: Vec<String>) -> Outcome {
        self.secrets.extend(secrets);
        self
    }
}

/// A command that could not do its job (bad arguments, unreadable input, database down).
/// Exit code 2, or Nagios UNKNOWN (3) where the output format is nagios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Secret values to mask in the message.
    pub secrets: Vec<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            secrets: Vec::new(),
        }
    }

    pub fn secrets(mut self, secrets: Vec<String>) -> Failure {
        self.secrets.extend(secrets);
        self
    }

    /// The Nagios plugin form: one status line.
    pub fn nagios(&self) -> String {
        crate::report::nagios::unknown(&self.message)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::new(message)
    }
}

/// A running message for stderr that must appear while the work goes on (e.g. the backup
/// path, printed before a repair changes anything, so it is known even if the run dies).
/// The command layer supplies it; engines call it instead of printing.
pub type Notify<'a> = &'a mut dyn FnMut(&str);
