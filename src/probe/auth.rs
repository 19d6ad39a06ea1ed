//! `--user`: log in with AUTH PLAIN (RFC 4616) or LOGIN (draft-murchison-sasl-login), only
//! over TLS unless `--allow-plaintext-auth`, then ask the external and the local recipient.
//! The transcript shows `<credentials hidden>` where the encoded password went.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::relay::{Kind, Question};
use super::smtp::{Conn, Reply, SmtpError};
use super::{Login, Probed, ReplyJson, Run};

fn auth(conn: &mut Conn, mech: &str, user: &str, password: &str) -> Result<Reply, SmtpError> {
    if mech == "PLAIN" {
        let token = STANDARD.encode(format!("\0{user}\0{password}"));
        return conn.command_shown(
            &format!("AUTH PLAIN {token}"),
            "AUTH PLAIN <credentials hidden>",
        );
    }
    let r = conn.command("AUTH LOGIN")?;
    if r.code != 334 {
        return Ok(r);
    }
    let r = conn.command_shown(
        &STANDARD.encode(user),
        &format!("<user name {user}, base64>"),
    )?;
    if r.code != 334 {
        return Ok(r);
    }
    conn.command_shown(&STANDARD.encode(password), "<password hidden>")
}

/// Log in on the probe's connection and ask the recipients as the logged-in user.
pub(super) fn login_and_ask(run: &mut Run, p: &mut Probed, user: &str) {
    let mut login = Login {
        user: user.to_string(),
        mechanism: None,
        over_tls: false,
        ok: false,
        reply: None,
        reply_line: String::new(),
        skipped: None,
    };
    let result = try_login(run, p, &mut login);
    if let Err(why) = result {
        login.skipped = Some(why);
    }
    let ok = login.ok;
    p.login = Some(login);
    if !ok {
        return;
    }
    let s = run.s;
    let mut qs = vec![Question {
        name: "external recipient after login".into(),
        mail_from: s.from.clone(),
        rcpt_to: s.external_rcpt.clone(),
        kind: Kind::Foreign,
    }];
    if let Some(l) = &s.local_rcpt {
        qs.push(Question {
            name: "local recipient after login".into(),
            mail_from: s.from.clone(),
            rcpt_to: l.clone(),
            kind: Kind::Local,
        });
    }
    for q in &qs {
        // A lost connection would lose the login: ask only while it lasts.
        if run.conn.is_none() {
            break;
        }
        match run.ask(q, true) {
            Ok(t) => p.tests.push(t),
            Err(e) => {
                p.error.get_or_insert(e);
                return;
            }
        }
    }
}

fn try_login(run: &mut Run, p: &Probed, login: &mut Login) -> Result<(), String> {
    let Some(password) = run.s.password.clone() else {
        return Err("no password given (--password-env or --password-file)".into());
    };
    // A fresh connection: the relay questions may have used up the error budget.
    run.refusals = usize::MAX;
    run.ready()?;
    run.refusals = 0;
    let Some(mut conn) = run.conn.take() else {
        return Err("no connection".into());
    };
    login.over_tls = conn.tls.is_some();
    let mechs = if login.over_tls {
        p.auth_mechanisms.after_tls.clone().unwrap_or_default()
    } else {
        p.auth_mechanisms.before_tls.clone()
    };
    if !login.over_tls && !run.s.allow_plaintext_auth {
        run.conn = Some(conn);
        return Err(
            "the session has no TLS: the password is not sent in the clear (--allow-plaintext-auth allows it)"
                .into(),
        );
    }
    let Some(mech) = ["PLAIN", "LOGIN"]
        .into_iter()
        .find(|m| mechs.iter().any(|x| x == m))
    else {
        run.conn = Some(conn);
        return Err(if mechs.is_empty() {
            "the server offers no AUTH here".to_string()
        } else {
            format!(
                "the server offers neither PLAIN nor LOGIN ({})",
                mechs.join(" ")
            )
        });
    };
    login.mechanism = Some(mech.to_string());
    match auth(&mut conn, mech, &login.user, &password) {
        Ok(r) => {
            login.ok = r.code == 235;
            login.reply = Some(ReplyJson::from(&r));
            login.reply_line = r.line();
            run.conn = Some(conn);
            Ok(())
        }
        Err(e) => {
            login.reply_line = format!("({e})");
            run.close(conn, false);
            Ok(())
        }
    }
}
