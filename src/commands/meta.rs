//! The commands about relaydoctor itself: `rules`, `completions`, `manpage`.

use crate::cli::{Cli, RulesArgs, RulesFormat, Shell};
use crate::outcome::{Failure, Outcome, Status};
use crate::report::rules;

pub fn rules(a: &RulesArgs) -> Result<Outcome, Failure> {
    let out = match &a.code {
        Some(code) => {
            let Some(r) = crate::catalogue::get(&code.to_ascii_uppercase()) else {
                return Err(Failure::new(format!(
                    "no rule {code}; `relaydoctor rules` lists them"
                )));
            };
            match a.format {
                RulesFormat::Json => rules::one_json(r),
                _ => rules::one_text(r),
            }
        }
        None => match a.format {
            RulesFormat::Markdown => rules::markdown(),
            RulesFormat::Json => rules::all_json(),
            RulesFormat::Text => rules::table(),
        },
    };
    Ok(Outcome::new(out, Status::Clean))
}

pub fn completions(shell: Shell) -> Outcome {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let sh = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(sh, &mut cmd, "relaydoctor", &mut buf);
    Outcome::new(String::from_utf8_lossy(&buf).into_owned(), Status::Clean)
}

/// The man page, generated from the same definitions as --help: the top-level page, then a
/// section per command (options, examples), then exit status.
pub fn manpage_roff() -> String {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    let _ = clap_mangen::Man::new(cmd.clone()).render(&mut buf);
    let mut out = String::from_utf8_lossy(&buf).into_owned();
    let mut subs: Vec<clap::Command> = Vec::new();
    for sub in cmd.get_subcommands() {
        if sub.has_subcommands() {
            for s2 in sub.get_subcommands() {
                subs.push(
                    s2.clone()
                        .name(format!("{} {}", sub.get_name(), s2.get_name())),
                );
            }
        } else {
            subs.push(sub.clone());
        }
    }
    for sub in subs {
        let title = format!("relaydoctor {}", sub.get_name());
        out.push_str(&format!(".SH \"{}\"\n", title.to_uppercase()));
        if let Some(about) = sub.get_about() {
            out.push_str(&format!("{about}\n.PP\n"));
        }
        let man = clap_mangen::Man::new(sub.clone());
        let mut b = Vec::new();
        let _ = man.render_synopsis_section(&mut b);
        let _ = man.render_options_section(&mut b);
        let _ = man.render_extra_section(&mut b);
        // Nest the command's sections under its heading.
        let text = String::from_utf8_lossy(&b).replace(".SH ", ".SS ");
        out.push_str(&text);
    }
    out.push_str(
        ".SH \"EXIT STATUS\"\n0: no finding at or above \\-\\-fail\\-on. 1: findings. 2: relaydoctor could not do its job \
         (bad arguments, unreadable named path, database unreachable). With \\-\\-format nagios: 0 OK, 1 WARNING, \
         2 CRITICAL, 3 UNKNOWN.\n.SH FILES\n./relaydoctor.toml, /etc/relaydoctor.toml: settings (select, ignore, \
         per\\-path\\-ignores, severity, fail\\-on).\n.SH ENVIRONMENT\nNO_COLOR: no colors with \\-\\-color auto. \
         RELAYDOCTOR_DB_URL: database URL for the plesk commands.\n",
    );
    out
}
