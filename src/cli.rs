//! Command-line definitions (clap derive), nothing else.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use crate::report::OutputFormat;

const AFTER_HELP: &str = "\
Examples:
  relaydoctor lint                              # the live system's Postfix, Exim and qmail
  relaydoctor lint /etc/postfix                 # one configuration directory
  relaydoctor lint --root /srv/snapshots/mx1    # a server snapshot (post-migration audit)
  relaydoctor lint --diff                       # show proposed fixes as a diff, write nothing
  relaydoctor lint --target-version 3.9         # pre-upgrade check
  relaydoctor simulate --client 203.0.113.5 --rcpt user@example.net
  relaydoctor rules PF101                       # explain one rule
  relaydoctor plesk check --quiet               # cron: silent when the psa database is healthy

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 relaydoctor could not do its job.";

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  relaydoctor explain '554 5.7.1 <bob@example.net>: Relay access denied'
  relaydoctor explain --root /srv/snapshot/mx1 \"$(grep 'NOQUEUE: reject' /var/log/mail.log | tail -3)\"
  relaydoctor explain /etc/postfix - < bounce.txt
  relaydoctor explain --log /var/log/mail.log --rotated --since 2026-11-01
  relaydoctor explain --log /var/log/exim4/mainlog --format json
  zcat /var/log/mail.log.*.gz | relaydoctor explain --log -

Syslog timestamps have no year: they are taken to be in the current year, or the previous one
when that would put them more than a day in the future (--year overrides). --since/--until
compare as the log's wall clock unless both sides carry a zone (RFC 3339).

Exit codes: 0 no refusal found, 1 refusals found, 2 relaydoctor could not do its job.";

const DNS_EXAMPLES: &str = "\
Examples:
  relaydoctor dns --server-ip 192.0.2.25        # cron, while DNS changes propagate after a migration
  relaydoctor dns                               # live system: its interface addresses
  relaydoctor dns --root /srv/snapshot/mx1 --server-ip 192.0.2.25 --resolver 127.0.0.1
  relaydoctor dns --domain example.com --select DN1 --format json
  relaydoctor dns --format nagios --quiet

Checks: the MX of every domain the configuration accepts (and of --domain) reaches one of the
server's addresses (DN1xx); every blocklist zone lists its test entry 127.0.0.2 (or `test`) and
not 127.0.0.1 (or `invalid`), and Spamhaus does not refuse the resolver (DN2xx); each server
address has a PTR record that resolves back and matches the HELO name (DN3xx). DNS failures and
timeouts are reported as \"could not check\" (info); with --format nagios, a run where nothing
could be checked is UNKNOWN.

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 relaydoctor could not do its job.";

const PROBE_EXAMPLES: &str = "\
Examples:
  relaydoctor probe mail.example.com                     # ports 25, 587 and 465
  relaydoctor probe mail.example.com:587 --user alice@example.com --password-env SMTP_PASSWORD
  relaydoctor probe 192.0.2.25:25 --local-rcpt postmaster@example.com --format json
  relaydoctor probe mail.example.com --format nagios --quiet

Each target is asked about 20 MAIL FROM/RCPT TO questions without logging in (plain relay, the
nmap smtp-open-relay address forms, look-alike domains) and, with --user, the same after a login
over TLS. DATA is never sent, so nothing is ever queued; one connection at a time, at most 30
transactions per target, QUIT at the end. The text output lists every line sent (the password
hidden) and ends with the client settings that work.

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 no target could be reached.";

#[derive(Debug, Parser)]
#[command(
    name = "relaydoctor",
    version,
    about = "Finds why a mail server refuses to relay, or relays for everyone",
    long_about = "relaydoctor reads Postfix, Exim and qmail configurations (and Plesk's psa \
database), models who may relay where on every listening service, and explains each problem \
with the file and line that causes it, proposing fixes as diffs.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The server's name in JSON output (`host.name`), e.g. for a snapshot [default: the
    /// snapshot's etc/hostname or directory name, or this system's host name]
    #[arg(long, global = true, value_name = "NAME")]
    pub host_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configurations for open relays, relay denials, risky checks and upgrade traps
    #[command(after_help = "\
Examples:
  relaydoctor lint
  relaydoctor lint /etc/postfix --format json
  relaydoctor lint /etc/postfix/main.cf.dpkg-dist   # a package's new copy, read as main.cf
  relaydoctor lint --root /srv/snapshot --select PF,EX101 --fail-on error
  relaydoctor lint /etc/postfix --diff      # preview fixes
  relaydoctor lint /etc/postfix --fix       # apply safe fixes (backup: FILE.relaydoctor.bak)
  relaydoctor lint --quiet --fail-on error  # cron: silent unless something is wrong
  relaydoctor lint --format sarif -o relaydoctor.sarif
  relaydoctor lint --format prometheus -o /var/lib/node_exporter/relaydoctor.prom
  relaydoctor lint --write-baseline .relaydoctor-baseline.json   # accept today's findings
  relaydoctor lint --baseline .relaydoctor-baseline.json         # fail only on new ones

Suppress one finding with a comment on the line before the setting:
  # relaydoctor: ignore PF104 -- AUTH here is reachable only from the office VLAN
  smtpd_sasl_auth_enable = yes")]
    Lint(LintArgs),
    /// Show what each listening service answers to one client and recipient, and why
    #[command(after_help = "\
Examples:
  relaydoctor simulate --client 203.0.113.5 --rcpt user@example.net
  relaydoctor simulate /etc/postfix --client 198.51.100.7 --sasl-user alice --rcpt bob@example.org --service submission
  relaydoctor simulate --root /srv/snapshot --client 10.0.0.5 --rcpt x@example.com --format json")]
    Simulate(SimulateArgs),
    /// Explain bounces and mail-log lines: who refused, why, and what to check
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// Merge many hosts' JSON results (lint, plesk check, dns, probe) into one fleet report
    #[command(after_help = "\
Examples:
  relaydoctor report results/                          # every *.json below results/
  relaydoctor report results/ --format html -o fleet.html
  relaydoctor report results/ --format json -o fleet-$(date +%F).json
  relaydoctor report results/ --baseline fleet-2026-12-03.json   # what is new, what was fixed

Each host is named by the `host` object of its results (--host-name when they were made).
Hosts are ranked by their worst finding, open relays first.

Exit codes: 0 no finding at or above --fail-on on any host, 1 findings, 2 error.")]
    Report(ReportArgs),
    /// List the rules, or explain one
    #[command(after_help = "\
Examples:
  relaydoctor rules
  relaydoctor rules PF101")]
    Rules(RulesArgs),
    /// Check the DNS of the accepted domains (MX), the blocklists in use and reverse DNS
    #[command(after_help = DNS_EXAMPLES)]
    Dns(DnsArgs),
    /// Ask a running SMTP server: TLS, AUTH, relay tests, and the client settings that work
    #[command(after_help = PROBE_EXAMPLES)]
    Probe(ProbeArgs),
    /// Check or repair Plesk's smtp_poplocks table and mail relay settings
    #[command(subcommand)]
    Plesk(PleskCommand),
    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  relaydoctor completions bash > /etc/bash_completion.d/relaydoctor
  relaydoctor completions zsh > \"${fpath[1]}/_relaydoctor\"
  relaydoctor completions fish > ~/.config/fish/completions/relaydoctor.fish")]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff)
    #[command(after_help = "\
Examples:
  relaydoctor manpage > relaydoctor.1 && man ./relaydoctor.1")]
    Manpage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PleskFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, Args)]
pub struct ColorArgs {
    /// When to color text output (NO_COLOR in the environment means never for auto)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Configuration directories or files (default: discover on the live system)
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// How configurations are found and read; shared by lint, simulate and explain.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Treat DIR as the root filesystem of a server snapshot
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Postfix version whose defaults apply (default: the installed one, else the newest known)
    #[arg(long, value_name = "X.Y")]
    pub postfix_version: Option<String>,
    /// Exim version whose behaviour applies (default: the installed one, else current Exim)
    #[arg(long, value_name = "X.Y")]
    pub exim_version: Option<String>,
    /// Exim macro definition, like exim's -D (repeatable)
    #[arg(long = "define", value_name = "NAME=VALUE")]
    pub defines: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Write the report to FILE (atomically: a scrape or reader never sees half a file)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Settings file (default: ./relaydoctor.toml, then /etc/relaydoctor.toml)
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Report only findings not recorded in this baseline file
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Record today's findings in FILE as the baseline, then report as usual
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    #[command(flatten)]
    pub color: ColorArgs,
    /// Only these rule codes or prefixes (comma-separated, e.g. PF,EX101)
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub select: Vec<String>,
    /// Skip these rule codes or prefixes (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub ignore: Vec<String>,
    /// Lowest severity that makes the exit code 1 [default: warning, or fail-on in relaydoctor.toml]
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Print the safe fixes as unified diffs; write nothing
    #[arg(long)]
    pub diff: bool,
    /// Apply the safe fixes (atomically, keeping FILE.relaydoctor.bak), then lint again
    #[arg(long, conflicts_with = "diff")]
    pub fix: bool,
    /// Pre-upgrade check: compare relay decisions with this MTA version
    #[arg(long, value_name = "X.Y", value_parser = version_arg)]
    pub target_version: Option<String>,
    /// Postfix compatibility_level assumed after the upgrade
    #[arg(long, value_name = "LEVEL", value_parser = version_arg)]
    pub target_compat: Option<String>,
    /// Print nothing when there is no finding at or above --fail-on (for cron)
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// An address this server receives mail at (repeatable; required with --root) [default:
    /// the live host's global interface addresses and its listeners' addresses]
    #[arg(long = "server-ip", value_name = "IP")]
    pub server_ip: Vec<std::net::IpAddr>,
    /// The DNS resolver to ask (repeatable) [default: the nameservers of /etc/resolv.conf of
    /// the root]
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Vec<String>,
    /// Also check this domain (repeatable)
    #[arg(long, value_name = "NAME")]
    pub domain: Vec<String>,
    /// Also check the domains with mail service in Plesk's psa database, and fail when it
    /// cannot be read (credentials as for `plesk check`: RELAYDOCTOR_DB_URL, the root's
    /// /etc/psa/private/dsn.ini or /etc/psa/.psa.shadow) [default: on a live Plesk server,
    /// when it can be read]
    #[arg(long)]
    pub plesk: bool,
    /// Queries in flight at once
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to wait for one answer before trying again (two tries per query)
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Write the report to FILE (atomically)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub color: ColorArgs,
    /// Only these rule codes or prefixes (comma-separated, e.g. DN1,DN201)
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub select: Vec<String>,
    /// Skip these rule codes or prefixes (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub ignore: Vec<String>,
    /// Lowest severity that makes the exit code 1
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    /// Print nothing when there is no finding at or above --fail-on (for cron)
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Client IP address
    #[arg(long, value_name = "IP")]
    pub client: std::net::IpAddr,
    /// The client's host name as reverse DNS gives it (verified forward); without it, rules
    /// that match host names (Exim host lists, Postfix check_client_access by name) are
    /// `depends` for Exim and Postfix sees `unknown`
    #[arg(long, value_name = "NAME")]
    pub client_name: Option<String>,
    /// The client authenticated with SMTP AUTH as NAME
    #[arg(long, value_name = "NAME")]
    pub sasl_user: Option<String>,
    /// HELO/EHLO name the client sends
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Envelope sender (MAIL FROM)
    #[arg(long, value_name = "ADDR")]
    pub sender: Option<String>,
    /// Envelope recipient (RCPT TO)
    #[arg(long, value_name = "ADDR")]
    pub rcpt: String,
    /// Only this listening service (e.g. smtp, submission, 127.0.0.1:10025)
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Whether the session uses TLS (reject_plaintext_session, permit_tls_*); default: yes
    /// where the listener requires it (smtpd_tls_security_level = encrypt, wrapper mode)
    #[arg(long, value_enum, value_name = "yes|no")]
    pub tls: Option<YesNo>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub color: ColorArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

/// `explain [--root DIR | PATH] [TEXT | --log FILE | -]`; what the options mean is documented
/// in src/explain/mod.rs.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Configuration PATHs (existing paths) to simulate against, then the TEXT to explain (a
    /// pasted bounce or log lines; `-` reads standard input)
    #[arg(value_name = "PATH|TEXT")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Summarise a whole mail log (plain or gzip; repeatable; `-` for standard input)
    #[arg(long, value_name = "FILE")]
    pub log: Vec<PathBuf>,
    /// With --log FILE: also read its rotated siblings (FILE.1, FILE.2.gz, ...), oldest first
    #[arg(long)]
    pub rotated: bool,
    /// Only events at or after this time (YYYY-MM-DD[ HH:MM[:SS]] or RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Year of syslog timestamps, which have none [default: the current year, or the previous
    /// one for dates that would lie more than a day in the future]
    #[arg(long, value_name = "YYYY")]
    pub year: Option<i32>,
    /// How many top clients and recipients each group lists
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
    /// Do not simulate the configuration's decision
    #[arg(long)]
    pub no_simulate: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub color: ColorArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Result files (`--format json` output of lint, plesk check, dns, probe) or directories
    /// holding them
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// An earlier `report --format json`: also show what is new and what was fixed since
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = crate::report::fleet::FleetFormat::Text)]
    pub format: crate::report::fleet::FleetFormat,
    /// Write the report to FILE (atomically)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity on any host that makes the exit code 1
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    #[command(flatten)]
    pub color: ColorArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// A rule code to explain (default: list every rule)
    pub code: Option<String>,
    /// Output format (markdown: the whole catalogue, as in docs/rules.md)
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Root filesystem where Plesk's files are (/etc/psa/...)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Database URL mysql://user:password@host:port/psa (visible to other users: prefer a DSN file)
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// A dsn.ini-style file: section [general] with database.host, database.port,
    /// database.username, database.password, database.dbname (Plesk's own format)
    #[arg(long, value_name = "PATH")]
    pub dsn_file: Option<PathBuf>,
    /// Seconds to wait for the database server to connect and to answer (Nagios gets
    /// UNKNOWN when it does not)
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = timeout_arg)]
    pub timeout: f64,
}

/// A positive number of seconds, at most a day.
fn timeout_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 86_400.0 => Ok(t),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum PleskCommand {
    /// Check smtp_poplocks and the relay settings (read-only)
    #[command(after_help = "\
Examples:
  relaydoctor plesk check
  relaydoctor plesk check --quiet                 # cron: silent when healthy
  relaydoctor plesk check --format nagios         # Nagios/Icinga plugin")]
    Check(PleskCheckArgs),
    /// Show (and with --apply, make) the repairs smtp_poplocks needs
    #[command(after_help = "\
Examples:
  relaydoctor plesk repair                        # dry run: diff and SQL, nothing written
  relaydoctor plesk repair --apply                # back up, then repair all-or-nothing")]
    Repair(PleskRepairArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PleskCheckArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = PleskFormat::Text)]
    pub format: PleskFormat,
    #[command(flatten)]
    pub color: ColorArgs,
    /// Print nothing when healthy
    #[arg(long, short)]
    pub quiet: bool,
    /// Lowest severity that makes the exit code 1
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Args)]
pub struct PleskRepairArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Write the changes (default: dry run)
    #[arg(long)]
    pub apply: bool,
    /// Also remove bad white-list rows (lock_time NULL)
    #[arg(long)]
    pub include_whitelist: bool,
    /// Where the backup of deleted rows goes
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/relaydoctor/backups"
    )]
    pub backup_dir: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub color: ColorArgs,
}

/// `3.9`, `4.97`, `3.6.1`: a version or compatibility level, rejected early rather than
/// silently ignored by the pre-upgrade check.
fn version_arg(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let ok = parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a version such as 3.9 or 4.97"))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// host[:port] (repeatable); a bare host means ports 25, 587 and 465 (465: implicit TLS)
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Log in as NAME (AUTH PLAIN or LOGIN, over TLS only unless --allow-plaintext-auth)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the password from environment variable VAR
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Send the password even where the session has no TLS
    #[arg(long)]
    pub allow_plaintext_auth: bool,
    /// Envelope sender of the tests [default: relaydoctor-probe@example.org]
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// A recipient the server receives mail for (mail-refused test, and after login)
    #[arg(long, value_name = "ADDR")]
    pub local_rcpt: Option<String>,
    /// A recipient in a domain the server must not relay to [default: relaytest@example.net]
    #[arg(long, value_name = "ADDR")]
    pub external_rcpt: Option<String>,
    /// The name sent with EHLO [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Seconds to wait on connect and on every read and write
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Treat PORT as implicit TLS too, like 465 (repeatable; e.g. a wrapper-mode listener on
    /// another port)
    #[arg(long, value_name = "PORT")]
    pub implicit_tls: Vec<u16>,
    /// Also trust the CA certificates (PEM) in FILE
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Compare the answers with the configuration under DIR (`/` for this host's): config
    /// drift, and whether the probe's own address is trusted
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Write the report to FILE (atomically)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub color: ColorArgs,
    /// Lowest severity that makes the exit code 1
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
    /// Print nothing when there is no finding at or above --fail-on (for cron)
    #[arg(long, short)]
    pub quiet: bool,
}
