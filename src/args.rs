//! The one place where command-line arguments become validated, typed settings.
//!
//! clap (src/cli.rs) only checks shapes; everything that can be wrong in a way clap cannot see
//! (a directory that is not one, a version that is not a version, a rule code that names no
//! rule, a client that is not an address) is refused here, once, for every command that takes
//! the flag. Engines receive these settings and never see `cli::*`.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::cli;
use crate::config::Config;
use crate::context::{Context, Options, Root};
use crate::finding::Severity;
use crate::outcome::Failure;
use crate::relay::Query;
use crate::report::OutputFormat;

/// Colour on or off: `--color always|never` win; `auto` means a terminal on stdout and no
/// NO_COLOR in the environment (https://no-color.org).
pub fn color(choice: cli::ColorChoice) -> bool {
    let on = match choice {
        cli::ColorChoice::Always => true,
        cli::ColorChoice::Never => false,
        cli::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    };
    // `colored` makes its own terminal/NO_COLOR guess; ours (with --color) wins.
    colored::control::set_override(on);
    on
}

pub fn fail_on(f: cli::FailOn) -> Severity {
    match f {
        cli::FailOn::Error => Severity::Error,
        cli::FailOn::Warning => Severity::Warning,
        cli::FailOn::Info => Severity::Info,
    }
}

/// The severity that fails a lint run: the flag, else the settings file, else warning.
pub fn effective_fail_on(f: Option<cli::FailOn>, config: &Config) -> Severity {
    f.map(fail_on)
        .unwrap_or(config.fail_on.unwrap_or(Severity::Warning))
}

/// The run context for `--root`, `--postfix-version` and `--define` (lint, simulate, explain).
/// Every problem is an error: a typo must never fall back to the live system or the newest
/// version while the output claims otherwise.
pub fn context(
    t: &cli::ConfigArgs,
    target_version: Option<String>,
    target_compat: Option<String>,
) -> Result<Context, Failure> {
    let root = match &t.root {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Failure::new(format!(
                    "--root {}: not a directory",
                    dir.display()
                )));
            }
            Root::snapshot(dir)
        }
        None => Root::live(),
    };
    if let Some(v) = &t.postfix_version {
        if crate::postfix::params::parse_version(v).is_none_or(|(major, _, _)| major < 2) {
            return Err(Failure::new(format!(
                "--postfix-version {v}: not a Postfix version (e.g. 3.7 or 3.7.11)"
            )));
        }
    }
    if let Some(v) = &t.exim_version {
        if crate::exim::version::parse(v).is_none_or(|(major, _)| major != 4) {
            return Err(Failure::new(format!(
                "--exim-version {v}: not an Exim 4 version (e.g. 4.96)"
            )));
        }
    }
    let defines = t
        .defines
        .iter()
        .map(|d| match d.split_once('=') {
            Some((n, v)) => (n.trim().to_string(), v.to_string()),
            None => (d.trim().to_string(), String::new()),
        })
        .collect();
    Ok(Context::new(
        root,
        Options {
            postfix_version: t.postfix_version.clone(),
            exim_version: t.exim_version.clone(),
            target_version,
            target_compat,
            exim_defines: defines,
        },
    ))
}

/// `--target-version` is a pre-upgrade check: a release older than the one running, or
/// newer than any relaydoctor knows the defaults of, would be compared in a direction (or
/// against defaults) the upgrade checks are not written for, and gave contradictory PF120
/// errors ("after upgrading from 3.11 to 2.11 ... at compatibility_level 3.6", review7 F13).
/// Postfix releases are 2.x and 3.x, Exim's 4.x.
fn check_target_version(ctx: &Context, t: &str, discovered: bool) -> Result<(), Failure> {
    use crate::postfix::params::{parse_version, show_version};
    let Some(target) = parse_version(t) else {
        return Err(Failure::new(format!(
            "--target-version {t}: not a version such as 3.9 or 4.97"
        )));
    };
    let refuse = |why: String| Err(Failure::new(format!("--target-version {t}: {why}")));
    if target.0 == 4 {
        let Some(running) = crate::exim::version::detect(ctx) else {
            return Ok(());
        };
        if (target.0 as u32, target.1 as u32) < (running.major, running.minor) {
            return refuse(format!(
                "older than the running Exim {}.{} ({}); a pre-upgrade check compares with a newer release",
                running.major, running.minor, running.source
            ));
        }
        return Ok(());
    }
    if !matches!(target.0, 2 | 3) {
        return refuse("not a Postfix (2.x, 3.x) or Exim (4.x) release".into());
    }
    let newest = crate::postfix::params::get().newest;
    if target > newest {
        return refuse(format!(
            "newer than any release relaydoctor knows: it knows Postfix up to {}",
            show_version(newest)
        ));
    }
    // The running version as the checks resolve it (src/postfix/model.rs, version()).
    let running = match &ctx.options.postfix_version {
        Some(v) => parse_version(v).map(|r| (r, "--postfix-version".to_string())),
        None => ctx.installed(&["postfix"]).and_then(|i| {
            let source = format!("package {} {} in {}", i.package, i.version, i.source);
            parse_version(i.upstream()).map(|r| (r, source))
        }),
    };
    match running {
        Some((r, source)) if target < r => refuse(format!(
            "older than the running Postfix {} ({source}); a pre-upgrade check compares with a newer release",
            show_version(r)
        )),
        // Nothing says which Postfix runs, and a Postfix configuration is there: the checks
        // would assume the newest, and any older target would be a downgrade.
        None if target < newest && discovered && has_postfix(ctx) => refuse(format!(
            "the running Postfix version is not known here (no installed package found), and relaydoctor would assume the newest it knows, {}; pass --postfix-version with the version the server runs",
            show_version(newest)
        )),
        _ => Ok(()),
    }
}

/// Whether a Postfix main.cf is where discovery looks (under the root).
fn has_postfix(ctx: &Context) -> bool {
    crate::postfix::PLACES.iter().any(|p| {
        ctx.root
            .resolve(&std::path::Path::new(p).join("main.cf"))
            .is_file()
    })
}

/// A `--select`/`--ignore` entry that names no rule is almost always a typo; in a cron job
/// it would silently turn the check into "healthy" forever, so it is an error.
pub fn check_codes(list: &[String], flag: &str) -> Result<(), Failure> {
    let mut codes = list
        .iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .peekable();
    // The whole catalogue is parsed only when there is a code to check: parsing all of it
    // costs a lint run more than reading a Debian split conf.d (scripts/bench exim).
    if codes.peek().is_none() {
        return Ok(());
    }
    let cat = crate::catalogue::all();
    for c in codes {
        if !cat.keys().any(|k| k.starts_with(&c)) {
            return Err(Failure::new(format!(
                "{flag} {c}: no rule code starts with {c} (`relaydoctor rules` lists them)"
            )));
        }
    }
    Ok(())
}

/// Where and how a command's result is delivered (only the command layer uses this).
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Failures print the Nagios UNKNOWN line on stdout and exit 3.
    pub nagios: bool,
    /// A failed run writes `relaydoctor_up 0` so alerts fire.
    pub prometheus: bool,
    /// Print nothing when healthy.
    pub quiet: bool,
    /// Write stdout to this file atomically instead of printing it.
    pub output: Option<PathBuf>,
    /// The server the result is about, added to JSON output.
    pub host: Option<crate::host::Host>,
    /// `--format json`: a failure is a JSON document too (`"error"`), so a fleet report
    /// shows the host as not checked instead of skipping an empty file.
    pub json: bool,
}

/// The host identity for a command reading `root` (None: the live system).
pub fn host(flag: Option<&str>, root: Option<&std::path::Path>) -> crate::host::Host {
    let root = match root {
        Some(dir) if dir.is_dir() => Root::snapshot(dir),
        _ => Root::live(),
    };
    crate::host::identify(flag, &root)
}

/// A delivery to stdout, with the host identity for JSON.
pub fn plain_delivery(host: crate::host::Host) -> Delivery {
    Delivery {
        host: Some(host),
        ..Delivery::default()
    }
}

/// `lint`, resolved.
pub struct LintSettings {
    pub ctx: Context,
    pub paths: Vec<PathBuf>,
    pub format: OutputFormat,
    pub color: bool,
    pub threshold: Severity,
    pub config: Config,
    pub select: Vec<String>,
    pub ignore: Vec<String>,
    pub baseline: Option<PathBuf>,
    pub write_baseline: Option<PathBuf>,
    pub diff: bool,
    pub fix: bool,
    /// A spinner on stderr while discovering (text output on a terminal only).
    pub progress: bool,
    /// --quiet: say nothing on stderr that is not a problem.
    pub quiet: bool,
    /// The report goes to an `-o` file, not the terminal.
    pub to_file: bool,
}

pub fn lint(a: &cli::LintArgs) -> Result<LintSettings, Failure> {
    let format = a.format;
    let config = Config::load(a.config.as_deref())?;
    check_codes(&a.select, "--select")?;
    check_codes(&a.ignore, "--ignore")?;
    check_codes(&config.select, "select in relaydoctor.toml:")?;
    check_codes(&config.ignore, "ignore in relaydoctor.toml:")?;
    let ctx = context(
        &a.target.config,
        a.target_version.clone(),
        a.target_compat.clone(),
    )?;
    if let Some(t) = &a.target_version {
        check_target_version(&ctx, t, a.target.paths.is_empty())?;
    }
    // Command-line filters replace the settings file's, as with ruff and shellcheck.
    let select = if a.select.is_empty() {
        config.select.clone()
    } else {
        a.select.clone()
    };
    let ignore = if a.ignore.is_empty() {
        config.ignore.clone()
    } else {
        a.ignore.clone()
    };
    Ok(LintSettings {
        ctx,
        paths: a.target.paths.clone(),
        format,
        color: color(a.color.color) && a.output.is_none(),
        threshold: effective_fail_on(a.fail_on, &config),
        config,
        select,
        ignore,
        baseline: a.baseline.clone(),
        write_baseline: a.write_baseline.clone(),
        diff: a.diff,
        fix: a.fix,
        progress: format == OutputFormat::Text && !a.quiet,
        quiet: a.quiet,
        to_file: a.output.is_some(),
    })
}

/// How a lint run is delivered, known even when its settings cannot be resolved (a
/// failure still needs its Nagios or Prometheus form).
pub fn lint_delivery(a: &cli::LintArgs, host_name: Option<&str>) -> Delivery {
    let format = a.format;
    Delivery {
        nagios: format == OutputFormat::Nagios,
        prometheus: format == OutputFormat::Prometheus,
        quiet: a.quiet,
        output: a.output.clone(),
        host: Some(host(host_name, a.target.config.root.as_deref())),
        json: format == OutputFormat::Json,
    }
}

/// text or json, for the commands that have only those.
pub fn json(f: cli::Format) -> bool {
    f == cli::Format::Json
}

/// `simulate`, resolved.
pub struct SimulateSettings {
    pub ctx: Context,
    pub paths: Vec<PathBuf>,
    pub query: Query,
    pub json: bool,
    pub color: bool,
}

pub fn simulate(a: &cli::SimulateArgs) -> Result<SimulateSettings, Failure> {
    let ctx = context(&a.target.config, None, None)?;
    let client: IpAddr = a.client;
    if !a.rcpt.contains('@') {
        return Err(Failure::new(format!(
            "--rcpt {}: not an address (user@domain)",
            a.rcpt
        )));
    }
    if let Some(n) = &a.client_name {
        host_name(n)?;
    }
    Ok(SimulateSettings {
        ctx,
        paths: a.target.paths.clone(),
        query: Query {
            client_ip: client.to_string(),
            client_name: a.client_name.clone(),
            sasl_user: a.sasl_user.clone(),
            helo: a.helo.clone(),
            sender: a.sender.clone(),
            rcpt: a.rcpt.clone(),
            service: a.service.clone(),
            tls: a.tls.map(|t| t == cli::YesNo::Yes),
        },
        json: json(a.format),
        color: color(a.color.color),
    })
}

/// What reverse DNS can give: labels of letters, digits, `-` and `_`, dot-separated.
fn host_name(n: &str) -> Result<(), Failure> {
    let host = n.strip_suffix('.').unwrap_or(n);
    let ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "--client-name {n:?}: not a host name (leave it out for a client without reverse DNS, which Postfix calls `unknown`)"
        )))
    }
}

/// `explain`, resolved.
pub fn explain(a: &cli::ExplainArgs) -> Result<crate::explain::Settings, Failure> {
    // The context is resolved before anything is read, so a bad --root or
    // --postfix-version fails loudly instead of falling back to the live system.
    let ctx = context(&a.config, None, None)?;
    let years = crate::explain::stamp::YearRule::new(a.year, crate::explain::stamp::now_wall());
    let bound = |flag: &str, v: &Option<String>| -> Result<_, Failure> {
        v.as_deref()
            .map(|t| {
                crate::explain::stamp::parse_bound(t)
                    .map_err(|e| Failure::new(format!("{flag} {e}")))
            })
            .transpose()
    };
    Ok(crate::explain::Settings {
        since: bound("--since", &a.since)?,
        until: bound("--until", &a.until)?,
        ctx,
        root: a.config.root.clone(),
        args: a.args.clone(),
        log: a.log.clone(),
        rotated: a.rotated,
        years,
        top: a.top,
        simulate: !a.no_simulate,
        json: json(a.format),
        color: color(a.color.color),
    })
}

/// A new context over the same root and options (after `--fix` changed files the old one
/// has cached).
pub fn fresh_context(ctx: &Context) -> Context {
    Context::new(ctx.root.clone(), ctx.options.clone())
}

/// `dns`, resolved: the engine's settings and how the result is shown.
pub struct DnsSettings {
    pub engine: crate::dns::Settings,
    pub format: OutputFormat,
    pub color: bool,
    pub threshold: Severity,
    pub select: Vec<String>,
    pub ignore: Vec<String>,
}

pub fn dns(a: &cli::DnsArgs) -> Result<DnsSettings, Failure> {
    check_codes(&a.select, "--select")?;
    check_codes(&a.ignore, "--ignore")?;
    let ctx = context(&a.target.config, None, None)?;
    // A snapshot's own interfaces are not this machine's: the addresses must be given.
    if ctx.root.is_snapshot() && a.server_ip.is_empty() {
        return Err(Failure::new(
            "--root: a snapshot's addresses are not this machine's; pass the address(es) the server receives mail at with --server-ip IP (repeatable)",
        ));
    }
    let mut servers = Vec::new();
    for r in &a.resolver {
        servers.push(crate::dns::resolve::parse_server(r).ok_or_else(|| {
            Failure::new(format!("--resolver {r}: not an address (IP or IP:PORT)"))
        })?);
    }
    if !(a.timeout > 0.0 && a.timeout <= 300.0) {
        return Err(Failure::new(format!(
            "--timeout {}: give seconds between 0 and 300 (e.g. 2 or 0.5)",
            a.timeout
        )));
    }
    if a.concurrency == 0 || a.concurrency > 4096 {
        return Err(Failure::new(format!(
            "--concurrency {}: give 1 to 4096 queries in flight",
            a.concurrency
        )));
    }
    let resolv_conf = if servers.is_empty() {
        // Through the root like every other read: a snapshot's resolv.conf is often a
        // symlink (to ../run/systemd/resolve/stub-resolv.conf), which must stay inside it.
        let p = ctx.root.resolve(std::path::Path::new("/etc/resolv.conf"));
        Some(ctx.root.read_to_string(&p).map_err(|e| {
            Failure::new(format!(
                "{}: {e}; pass --resolver IP[:PORT]",
                ctx.root.display(&p).display()
            ))
        })?)
    } else {
        None
    };
    let plesk = plesk_domains(a.plesk, a.target.config.root.as_deref());
    Ok(DnsSettings {
        engine: crate::dns::Settings {
            ctx,
            paths: a.target.paths.clone(),
            server_ips: a.server_ip.clone(),
            resolver: crate::dns::ResolverSpec {
                servers,
                resolv_conf,
                timeout: std::time::Duration::from_secs_f64(a.timeout),
                concurrency: a.concurrency,
            },
            domains: a.domain.clone(),
            plesk,
        },
        format: a.format,
        color: color(a.color.color) && a.output.is_none(),
        threshold: fail_on(a.fail_on),
        select: a.select.clone(),
        ignore: a.ignore.clone(),
    })
}

/// The configuration `probe` compares its answers with: a snapshot, or this host's own.
fn probe_context(root: Option<PathBuf>) -> Result<crate::context::Context, Failure> {
    context(
        &cli::ConfigArgs {
            root,
            postfix_version: None,
            exim_version: None,
            defines: Vec::new(),
        },
        None,
        None,
    )
}

/// `dns --plesk`, or a live Plesk server (its /etc/psa exists): read Plesk's mail domains
/// with the credentials `plesk check` uses. A snapshot's database is not this machine's, so
/// a `--root` run reads it only when asked.
fn plesk_domains(asked: bool, root: Option<&std::path::Path>) -> crate::dns::PleskDomains {
    let db = crate::plesk::DbSettings {
        root: root.unwrap_or(std::path::Path::new("/")).to_path_buf(),
        env_url: std::env::var(crate::plesk::credentials::ENV_URL).ok(),
        ..Default::default()
    };
    if asked {
        crate::dns::PleskDomains::Required(db)
    } else if root.is_none() && std::path::Path::new("/etc/psa").is_dir() {
        crate::dns::PleskDomains::Auto(db)
    } else {
        crate::dns::PleskDomains::Off
    }
}

/// How a dns run is delivered (known even when its settings cannot be resolved).
pub fn dns_delivery(a: &cli::DnsArgs, host_name: Option<&str>) -> Delivery {
    Delivery {
        nagios: a.format == OutputFormat::Nagios,
        prometheus: a.format == OutputFormat::Prometheus,
        quiet: a.quiet,
        output: a.output.clone(),
        host: Some(host(host_name, a.target.config.root.as_deref())),
        json: a.format == OutputFormat::Json,
    }
}

/// `probe`, resolved: the engine's settings and how the result is shown.
pub struct ProbeSettings {
    pub engine: crate::probe::Settings,
    pub format: OutputFormat,
    pub color: bool,
    pub threshold: Severity,
}

/// An address for --from/--local-rcpt/--external-rcpt: local@domain, nothing that would
/// break the SMTP command line.
fn mailbox(flag: &str, v: &str) -> Result<String, Failure> {
    let ok = v
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !v.contains(['<', '>', ' ', '\r', '\n']);
    if ok {
        Ok(v.to_string())
    } else {
        Err(Failure::new(format!(
            "{flag} {v}: not an address (local@domain)"
        )))
    }
}

pub fn probe(a: &cli::ProbeArgs) -> Result<ProbeSettings, Failure> {
    let mut targets = Vec::new();
    for t in &a.targets {
        let mut parsed = crate::probe::parse_target(t).map_err(Failure::new)?;
        for t in parsed.iter_mut() {
            t.implicit_tls |= a.implicit_tls.contains(&t.port);
        }
        targets.extend(parsed);
    }
    if !(a.timeout > 0.0 && a.timeout <= 300.0) {
        return Err(Failure::new(format!(
            "--timeout {}: give seconds between 0 and 300 (e.g. 10 or 2.5)",
            a.timeout
        )));
    }
    let password =
        match (&a.password_env, &a.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                Failure::new(format!("--password-env {var}: the variable is not set"))
            })?),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| Failure::new(format!("--password-file {}: {e}", f.display())))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            (None, None) => None,
        };
    if a.user.is_some() != password.is_some() {
        return Err(Failure::new(
            "--user needs --password-env VAR or --password-file FILE (and they need --user)",
        ));
    }
    let helo = match &a.helo {
        Some(h) => h.clone(),
        None => crate::host::identify(None, &Root::live()).name,
    };
    if helo.is_empty() || helo.contains(char::is_whitespace) {
        return Err(Failure::new(format!("--helo {helo:?}: not a host name")));
    }
    let opt = |flag: &str, v: &Option<String>| v.as_deref().map(|v| mailbox(flag, v)).transpose();
    let this_host = targets
        .iter()
        .all(|t: &crate::probe::Target| crate::probe::is_this_host(&t.host));
    Ok(ProbeSettings {
        engine: crate::probe::Settings {
            targets,
            timeout: std::time::Duration::from_secs_f64(a.timeout),
            helo,
            from: opt("--from", &a.from)?.unwrap_or_else(|| "relaydoctor-probe@example.org".into()),
            external_rcpt: opt("--external-rcpt", &a.external_rcpt)?
                .unwrap_or_else(|| "relaytest@example.net".into()),
            local_rcpt: opt("--local-rcpt", &a.local_rcpt)?,
            user: a.user.clone(),
            password,
            allow_plaintext_auth: a.allow_plaintext_auth,
            ca_file: a.ca_file.clone(),
            root: match &a.root {
                Some(dir) => Some(probe_context(Some(dir.clone()))?),
                // The target is this host: its own configuration is the one to compare with
                // (issue #18, config-drift "on the live system when the target is this host").
                None if this_host => Some(probe_context(None)?),
                None => None,
            },
        },
        format: a.format,
        color: color(a.color.color) && a.output.is_none(),
        threshold: fail_on(a.fail_on),
    })
}

/// How a probe run is delivered (known even when its settings cannot be resolved).
pub fn probe_delivery(a: &cli::ProbeArgs, host_name: Option<&str>) -> Delivery {
    Delivery {
        nagios: a.format == OutputFormat::Nagios,
        prometheus: a.format == OutputFormat::Prometheus,
        quiet: a.quiet,
        output: a.output.clone(),
        host: Some(probe_host(a, host_name)),
        json: a.format == OutputFormat::Json,
    }
}

/// The server the results are about: --host-name, else the first target's host.
fn probe_host(a: &cli::ProbeArgs, host_name: Option<&str>) -> crate::host::Host {
    let first = a
        .targets
        .first()
        .and_then(|t| crate::probe::parse_target(t).ok())
        .and_then(|v| v.into_iter().next());
    match (host_name, first) {
        (None, Some(t)) => crate::host::Host {
            name: t.host,
            source: "the probe's first target".into(),
        },
        _ => host(host_name, None),
    }
}
