//! What one piece of evidence says: who refused whom, at which stage, with which reply, and
//! the class of cause behind it.

use serde::Serialize;

use crate::relay::RecipientClass;

/// Which software wrote the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Postfix,
    Exim,
    Qmail,
    /// An SMTP reply pasted from a bounce or a mail client's error dialog.
    Bounce,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Postfix => "postfix",
            Source::Exim => "exim",
            Source::Qmail => "qmail",
            Source::Bounce => "bounce",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Source::Postfix => "Postfix",
            Source::Exim => "Exim",
            Source::Qmail => "qmail",
            Source::Bounce => "SMTP reply",
        }
    }
}

/// Which server refused: the seed's two cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The server whose log this is refused its SMTP client: for a mail program that is the
    /// sending server (the user's own outgoing server).
    ThisServer,
    /// The recipient's server refused mail that this (sending) server tried to pass on.
    RecipientServer,
    /// A pasted reply without context: either.
    Unknown,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::ThisServer => "this-server",
            Side::RecipientServer => "recipient-server",
            Side::Unknown => "unknown",
        }
    }
}

/// Whether the SMTP client had authenticated when it was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// Logged in (Postfix `sasl_username=`/`auth=1`, Exim `A=`, qmail `remoteinfo/auth:`).
    Yes,
    /// Tried and failed.
    Failed,
    /// The session shows no AUTH at all.
    No,
    /// The evidence does not say (a lone reply or reject line).
    Unknown,
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Yes => "yes",
            Auth::Failed => "failed",
            Auth::No => "no",
            Auth::Unknown => "unknown",
        }
    }
}

/// The class of cause, from the reply text (see `classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Relay access denied / relay not permitted / not in rcpthosts / unable to relay.
    RelayDenied,
    /// Sender address verification (callout) failed or could not complete.
    SenderVerify,
    /// SMTP AUTH was attempted and failed.
    AuthFailed,
    /// The server demands authentication or TLS first.
    AuthRequired,
    /// A DNS blocklist listed the client.
    Blocklist,
    /// The recipient does not exist there.
    UnknownRecipient,
    /// The server's own configuration is broken (Postfix 451 4.3.5).
    ServerConfig,
    /// A Microsoft 365 / Exchange Online policy code (5.7.708 and friends): out of scope.
    Microsoft,
    /// Any other refusal (policy, sender, HELO, greylisting, content...).
    Other,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::RelayDenied => "relay-denied",
            Cause::SenderVerify => "sender-verify",
            Cause::AuthFailed => "auth-failed",
            Cause::AuthRequired => "auth-required",
            Cause::Blocklist => "blocklist",
            Cause::UnknownRecipient => "unknown-recipient",
            Cause::ServerConfig => "server-config",
            Cause::Microsoft => "microsoft",
            Cause::Other => "other",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Cause::RelayDenied => "Relay refused",
            Cause::SenderVerify => "Sender verification (callout) failed",
            Cause::AuthFailed => "Authentication failed",
            Cause::AuthRequired => "Authentication or TLS required",
            Cause::Blocklist => "Client on a DNS blocklist",
            Cause::UnknownRecipient => "Unknown recipient",
            Cause::ServerConfig => "Server configuration error",
            Cause::Microsoft => "Microsoft 365 / Exchange Online policy (out of scope)",
            Cause::Other => "Other refusal",
        }
    }
    /// Causes that bear on relaying (the reason relaydoctor exists); the rest are shown but
    /// are somebody else's business.
    pub fn is_relay_related(self) -> bool {
        !matches!(
            self,
            Cause::UnknownRecipient | Cause::Other | Cause::Microsoft
        )
    }
}

/// One refusal (or attempt) found in the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Where: `text`, `stdin`, or the log file as given.
    pub input: String,
    /// 1-based line number in that input.
    pub line: u64,
    /// The timestamp as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip)]
    pub stamp: Option<super::stamp::Stamp>,
    pub source: Source,
    /// The logging program (`postfix/submission/smtpd`), when the line names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    pub side: Side,
    /// SMTP stage: CONNECT, HELO, MAIL, RCPT, DATA, AUTH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// For recipient-side refusals: the remote server that refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    pub auth: Auth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    /// The reply or log text that states the reason.
    pub reply: String,
    /// Extra detail from a related line (Exim's `sender verify fail for <x>: reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub cause: Cause,
    /// The recipient's class as far as the refusal itself tells (a relay refusal means the
    /// domain was neither local nor a relay domain for the refusing server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_class: Option<RecipientClass>,
}

impl Event {
    /// An event with cause `Other`: callers classify (`with_reply_codes`) or set the cause.
    pub fn new(source: Source, side: Side, reply: String) -> Event {
        let cause = Cause::Other;
        Event {
            input: String::new(),
            line: 0,
            time: None,
            stamp: None,
            source,
            program: None,
            side,
            stage: None,
            client_name: None,
            client_ip: None,
            remote_host: None,
            helo: None,
            sender: None,
            recipient: None,
            proto: None,
            auth: Auth::Unknown,
            sasl_user: None,
            code: None,
            enhanced: None,
            reply,
            detail: None,
            cause,
            recipient_class: None,
        }
    }

    /// Take code and enhanced code from the start of `reply` and classify.
    pub fn with_reply_codes(mut self) -> Event {
        let (code, enhanced, _) = split_reply(&self.reply);
        self.code = code;
        self.enhanced = enhanced.map(str::to_string);
        self.cause = classify(&self.reply, self.enhanced.as_deref());
        self.recipient_class = recipient_class(self.cause, &self.reply);
        self
    }
}

/// Where a line came from; stamped on each event made from it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub input: &'a str,
    pub line: u64,
    /// Whole-log summaries keep only what groups show: no per-event copies of the input
    /// name and the timestamp text (the parsed stamp stays). The analyzer sets it.
    pub light: bool,
}

impl<'a> Origin<'a> {
    pub fn new(input: &'a str, line: u64) -> Origin<'a> {
        Origin {
            input,
            line,
            light: false,
        }
    }

    pub fn apply(&self, e: &mut Event, h: &super::header::Header) {
        e.line = self.line;
        if !self.light {
            e.input = self.input.to_string();
            e.time = h.time.map(str::to_string);
        }
        e.stamp = h.stamp;
        if e.program.is_none() {
            e.program = h.program.map(str::to_string);
        }
    }
}

/// `554 5.7.1 text` -> (554, "5.7.1", "text"); also `554-5.7.1` and bare texts.
pub fn split_reply(s: &str) -> (Option<u16>, Option<&str>, &str) {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut code = None;
    let mut rest = t;
    if b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && matches!(b[0], b'2'..=b'5')
        && (b.len() == 3 || b[3] == b' ' || b[3] == b'-')
    {
        code = t[..3].parse().ok();
        rest = t.get(4..).unwrap_or("").trim_start();
    }
    let mut enhanced = None;
    if let Some(tok) = rest.split_whitespace().next() {
        if is_enhanced(tok) {
            enhanced = Some(tok);
            rest = rest[tok.len()..].trim_start();
        }
    }
    (code, enhanced, rest)
}

/// The three numbers of an enhanced status code `c.s.d` (RFC 3463: class one digit,
/// subject and detail up to three), read byte by byte (this runs for every refusal).
fn enhanced_parts(tok: &str) -> Option<(u8, u16, u16)> {
    let b = tok.as_bytes();
    let class = match b.first()? {
        c @ (b'2' | b'4' | b'5') => c - b'0',
        _ => return None,
    };
    if b.get(1) != Some(&b'.') {
        return None;
    }
    let num = |p: &[u8]| -> Option<u16> {
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(p.iter().fold(0u16, |n, d| n * 10 + (d - b'0') as u16))
    };
    let rest = &b[2..];
    let dot = memchr::memchr(b'.', rest)?;
    Some((class, num(&rest[..dot])?, num(&rest[dot + 1..])?))
}

/// `5.7.1`, `4.7.708`: class.subject.detail (RFC 3463).
pub fn is_enhanced(tok: &str) -> bool {
    enhanced_parts(tok).is_some()
}

/// Microsoft 365's own enhanced codes: 5.7.57 (client not authenticated to send), 5.7.64
/// (TenantAttribution relay denied), 5.7.124/133-136 (group/tenant restrictions), and
/// the 5.7.5xx-7xx range (banned senders, tenant reputation such as 5.7.708 "Access denied,
/// traffic not accepted from this IP"). Source: Microsoft Learn, "Email non-delivery reports
/// and SMTP errors in Exchange Online".
pub fn is_microsoft_code(enhanced: &str) -> bool {
    match enhanced_parts(enhanced) {
        Some((4 | 5, 7, n)) => matches!(n, 57 | 64 | 124 | 133..=136 | 500..=799),
        _ => false,
    }
}

/// Phrases that give away the cause, case-insensitive, by cause (earlier causes win when
/// several match: a relay refusal that mentions a blocklist is still a relay refusal).
const CAUSE_PHRASES: &[(Cause, &[&str])] = &[
    (
        Cause::Microsoft,
        &["protection.outlook.com", "TenantAttribution"],
    ),
    (
        Cause::RelayDenied,
        &[
            "Relay access denied",
            "relay not permitted",
            "relaying denied",
            "unable to relay",
            "rcpthosts",
            "not allowed to relay",
            "relay access",
            "relaying not allowed",
            "we do not relay",
        ],
    ),
    (
        Cause::SenderVerify,
        &[
            "sender verify",
            "unverified address",
            "sender address verification",
        ],
    ),
    (
        Cause::AuthFailed,
        &[
            "authentication failed",
            "authenticator failed",
            "Incorrect authentication data",
        ],
    ),
    (
        Cause::AuthRequired,
        &[
            "Authentication required",
            "must authenticate",
            "Must issue a STARTTLS",
            "Client not authenticated",
            "auth not available",
        ],
    ),
    (
        Cause::Blocklist,
        &[
            "blocked using",
            "black list",
            "blacklist",
            "blocklist",
            "listed at",
            "listed in",
            "spamhaus",
            " RBL",
        ],
    ),
    (
        Cause::ServerConfig,
        &["Server configuration error", "4.3.5"],
    ),
    (
        Cause::UnknownRecipient,
        &[
            "User unknown",
            "unknown user",
            "no such user",
            "no mailbox here",
            "Unrouteable address",
            "mailbox unavailable",
            "does not exist",
            "not existing recipient",
            "5.1.1",
        ],
    ),
];

type Matcher = (aho_corasick::AhoCorasick, Vec<(usize, Cause)>);

fn cause_matcher() -> Option<&'static Matcher> {
    static M: std::sync::OnceLock<Option<Matcher>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let mut pats = Vec::new();
        let mut causes = Vec::new();
        for (prio, (c, ps)) in CAUSE_PHRASES.iter().enumerate() {
            for p in *ps {
                pats.push(*p);
                causes.push((prio, *c));
            }
        }
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&pats)
            .ok()
            .map(|ac| (ac, causes))
    })
    .as_ref()
}

/// The cause class of a reply or log text.
pub fn classify(text: &str, enhanced: Option<&str>) -> Cause {
    let enhanced = enhanced.or_else(|| text.split_whitespace().take(3).find(|t| is_enhanced(t)));
    if enhanced.is_some_and(is_microsoft_code) {
        return Cause::Microsoft;
    }
    if enhanced == Some("4.3.5") {
        return Cause::ServerConfig;
    }
    // The commonest reply of all, without the automaton.
    static RELAY: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let relay = RELAY.get_or_init(|| memchr::memmem::Finder::new(b"Relay access denied"));
    if relay.find(text.as_bytes()).is_some() {
        return Cause::RelayDenied;
    }
    // The first phrase in the text decides (replies state their reason up front; a later
    // phrase is usually the explanation's detail, e.g. a URL naming a list).
    let best = cause_matcher()
        .and_then(|(ac, causes)| {
            ac.find(text)
                .and_then(|m| causes.get(m.pattern().as_usize()))
        })
        .map_or(Cause::Other, |&(_, c)| c);
    if best == Cause::Other && text.trim_start().starts_with("535") {
        return Cause::AuthFailed;
    }
    best
}

/// What a refusal tells about the recipient's class on the refusing server.
pub fn recipient_class(cause: Cause, text: &str) -> Option<RecipientClass> {
    match cause {
        Cause::RelayDenied => Some(RecipientClass::External),
        Cause::UnknownRecipient => {
            // Postfix's "User unknown in <table>" names the table that was consulted.
            static TABLES: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> =
                std::sync::OnceLock::new();
            let ac = TABLES
                .get_or_init(|| {
                    aho_corasick::AhoCorasick::builder()
                        .ascii_case_insensitive(true)
                        .build([
                            "relay recipient table",
                            "local recipient table",
                            "virtual mailbox table",
                            "virtual alias table",
                        ])
                        .ok()
                })
                .as_ref()?;
            // The relay table wins wherever it is named.
            let mut class = None;
            for m in ac.find_iter(text) {
                if m.pattern().as_usize() == 0 {
                    return Some(RecipientClass::Relay);
                }
                class = Some(RecipientClass::Local);
            }
            class
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_and_classify() {
        let (c, e, r) = split_reply("554 5.7.1 <bob@x>: Relay access denied");
        assert_eq!(
            (c, e, r),
            (Some(554), Some("5.7.1"), "<bob@x>: Relay access denied")
        );
        let (c, e, _) = split_reply("550 relay not permitted");
        assert_eq!((c, e), (Some(550), None));
        assert_eq!(
            classify("550 relay not permitted", None),
            Cause::RelayDenied
        );
        assert_eq!(
            classify(
                "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
                None
            ),
            Cause::RelayDenied
        );
        assert_eq!(
            classify(
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
                None
            ),
            Cause::Microsoft
        );
        assert_eq!(
            classify("451 4.3.5 Server configuration error", None),
            Cause::ServerConfig
        );
        assert_eq!(
            classify("554 5.7.1 Service unavailable; Client host [1.2.3.4] blocked using zen.spamhaus.org", None),
            Cause::Blocklist
        );
        assert!(is_enhanced("5.7.708") && !is_enhanced("5.7") && !is_enhanced("1.2.3"));
        assert!(!is_microsoft_code("5.7.1") && is_microsoft_code("5.7.57"));
    }
}
