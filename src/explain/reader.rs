//! Reading evidence: pasted text line by line, and whole mail logs streamed in fixed-size
//! chunks (plain or gzip, detected by content), with a byte-level pre-filter so that only
//! lines that can matter reach the parsers.
//!
//! A whole log goes through two stages: the producer reads (and decompresses) chunks that end
//! on a line boundary, counts their lines and runs the pre-filter over the raw bytes, noting
//! the few lines that can matter (`Hit`s); the consumer decodes and parses only those. The
//! producer runs on its own thread when one can be started (reading, decompression and the
//! byte scan overlap with parsing), with a fixed number of chunk buffers in flight, so memory
//! stays bounded whatever the log's size.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};

use super::event::Origin;
use super::header::{self, Spans};
use super::postfix::PID_SLOTS;
use super::stamp::YearRule;
use super::Analyzer;

/// Substrings of every line kind a parser acts on (events, session state, malformed lines
/// counted as bad). A line containing none of them is never an event and never changes the
/// parsers' state, so it is skipped without being decoded: `fast_path_equals_slow_path`
/// (below) holds the parsers to that.
const NEEDLES: &[&str] = &[
    // Postfix `reject:`, Exim `rejected`, chkuser `rejected`, spamcontrol `Reject::`, qlog
    // `result=rejected`.
    "eject",
    // Postfix `client=..., sasl_username=` (who authenticated in this smtpd process).
    "sasl_username=",
    // Postfix session summary (`auth=`): closes a session whose refusals wait for it.
    "disconnect from",
    // Exim `sender verify fail/defer`.
    "sender verify",
    // Exim `authenticator failed for`, Postfix `SASL ... authentication failed`.
    "authenticat",
    // qmail AUTH patches: `auth: auth-failed`.
    "auth-failed",
    // Postfix smtp client: the remote server's reply.
    " said: ",
    "refused to talk to me",
    // Exim: the remote server's reply.
    "SMTP error from remote",
    // chkuser (its malformed lines are counted as bad).
    "CHKUSER ",
    // qmail-smtpd transcripts, recognised by a program name containing `qmail` ...
    "qmail",
    // ... or by a daemontools TAI64N label at the start of the line (see `stamp`; the first
    // line of a chunk is checked on its own).
    "\n@40000000",
];

/// Index of "disconnect from" in NEEDLES: the commonest hit, skipped on the pid alone when
/// no session of that pid waits for it.
const DISCONNECT: usize = 2;
/// Index of the line-start TAI64N needle (its match starts at the preceding newline).
const TAI64N: usize = 11;

fn prefilter() -> Option<&'static AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(NEEDLES)
            .ok()
    })
    .as_ref()
}

/// Whether the pre-filter lets `line` (without its newline) through. The scan below finds the
/// same lines in whole chunks; this form is for tests.
pub fn passes(line: &[u8]) -> bool {
    if line.starts_with(&NEEDLES[TAI64N].as_bytes()[1..]) {
        return true;
    }
    prefilter().is_none_or(|ac| ac.is_match(Input::new(line)))
}

/// Chunk size of the log reader; lines longer than a chunk grow it up to MAX_LINE.
const CHUNK: usize = 1 << 20;
/// A single line longer than this is not a log line: it is skipped (counted as bad).
const MAX_LINE: usize = 1 << 24;
/// Chunks in flight between the producer thread and the parser.
const IN_FLIGHT: usize = 3;

fn count_nl(b: &[u8]) -> u64 {
    // SIMD (AVX2 where the CPU has it, chosen at run time): the whole log passes through here.
    bytecount::count(b, b'\n') as u64
}

/// The pid of a `prog[pid]: disconnect from` line, read backwards from the match. None when
/// the line has not exactly that shape (the line then takes the general path).
fn pid_before(buf: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_sub(3)?;
    if buf.get(end..at)? != b"]: " {
        return None;
    }
    let mut i = end;
    let mut pid: u32 = 0;
    while i > 0 && buf[i - 1].is_ascii_digit() {
        if end - i >= 9 {
            // More digits than a u32 pid has: let the parser decide.
            return None;
        }
        pid += (buf[i - 1] - b'0') as u32 * 10u32.pow((end - i) as u32);
        i -= 1;
    }
    (end > i && i > 0 && buf[i - 1] == b'[').then_some(pid)
}

/// A line the pre-filter let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    /// 1-based line number in the input.
    pub line: u64,
    /// For `prog[pid]: disconnect from` lines: the pid.
    pub disconnect_pid: Option<u32>,
    /// The decoded line (trimmed of a trailing CR) in `Chunk::decoded`.
    pub text: (usize, usize),
    /// Its header; None for a blank line.
    pub head: Option<Spans>,
}

/// Complete lines of the input and what the pre-filter found in them.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Allocated once (length = capacity); `len` bytes are valid.
    buf: Vec<u8>,
    len: usize,
    pub hits: Vec<Hit>,
    /// The hits' lines as text (invalid UTF-8 replaced), decoded once by the producer.
    decoded: String,
    /// Lines in this chunk.
    pub lines: u64,
    /// Lines longer than MAX_LINE dropped while filling this chunk.
    pub too_long: u64,
}

impl Chunk {
    pub fn text(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Decode the hits' lines and split their headers (work done on the producer's thread).
    /// A `prog[pid]: disconnect from` hit is decoded only when an earlier hit of that pid
    /// suggests its session holds state (`live`, a guess the parser does not rely on: it
    /// decodes a hit left undecoded itself when it does need it). Most disconnect lines
    /// close sessions nobody waits for, and decoding them all was a third of the producer's
    /// time.
    fn decode(&mut self, years: &YearRule, live: &mut PidSet) {
        self.decoded.clear();
        let Chunk {
            buf, hits, decoded, ..
        } = self;
        for h in hits.iter_mut() {
            let disconnect = h.disconnect_pid.is_some();
            if let Some(pid) = h.disconnect_pid {
                if !live.take(pid) {
                    continue;
                }
            }
            let raw = buf.get(h.start..h.end).unwrap_or(&[]);
            let at = decoded.len();
            push_decoded(decoded, raw);
            h.text = (at, decoded.len());
            let line = &decoded[at..];
            // A disconnect line ends its session: its pid is not put back.
            h.head = head_of(line, years, (!disconnect).then_some(&mut *live));
        }
    }

    fn line(&self, h: &Hit) -> &str {
        self.decoded.get(h.text.0..h.text.1).unwrap_or("")
    }
}

/// `raw` as text (invalid UTF-8 replaced), without a trailing CR, appended to `out`.
fn push_decoded(out: &mut String, raw: &[u8]) {
    match std::str::from_utf8(raw) {
        Ok(s) => out.push_str(s.trim_end_matches('\r')),
        Err(_) => out.push_str(String::from_utf8_lossy(raw).trim_end_matches('\r')),
    }
}

/// The header spans of a decoded line (None for a blank line); its pid goes into `live`.
fn head_of(line: &str, years: &YearRule, live: Option<&mut PidSet>) -> Option<Spans> {
    if line.trim().is_empty() {
        return None;
    }
    let h = header::split(line, years);
    if let (Some(live), Some(pid)) = (live, h.pid.and_then(|p| p.parse::<u32>().ok())) {
        live.put(pid);
    }
    Some(Spans::of(line, &h))
}

/// Pids (modulo PID_SLOTS) seen on hits since their last disconnect line: one bit each.
struct PidSet(Vec<u64>);

impl PidSet {
    fn new() -> PidSet {
        PidSet(vec![0; PID_SLOTS / 64])
    }
    fn put(&mut self, pid: u32) {
        let i = pid as usize % PID_SLOTS;
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    /// Whether `pid` is in the set; removes it.
    fn take(&mut self, pid: u32) -> bool {
        let i = pid as usize % PID_SLOTS;
        self.0.get_mut(i / 64).is_some_and(|w| {
            let was = *w & (1 << (i % 64)) != 0;
            *w &= !(1 << (i % 64));
            was
        })
    }
}

/// Find the pre-filter hits among the complete lines in `buf`, whose first line is number
/// `first_line`; returns the number of newlines in `buf`.
fn scan(buf: &[u8], first_line: u64, hits: &mut Vec<Hit>) -> u64 {
    let Some(ac) = prefilter() else {
        // Cannot happen (the patterns are constant): every line is a hit.
        let mut start = 0;
        for (line, l) in (first_line..).zip(buf.split(|&b| b == b'\n')) {
            hits.push(Hit {
                start,
                end: start + l.len(),
                line,
                disconnect_pid: None,
                text: (0, 0),
                head: None,
            });
            start += l.len() + 1;
        }
        return count_nl(buf);
    };
    let mut pos = 0;
    let mut counted_to = 0;
    let mut line = first_line;
    let tai = &NEEDLES[TAI64N].as_bytes()[1..];
    if buf.starts_with(tai) {
        let end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
        hits.push(Hit {
            start: 0,
            end,
            line,
            disconnect_pid: None,
            text: (0, 0),
            head: None,
        });
        pos = end + 1;
    }
    // One search over the whole chunk; matches inside a line already taken are skipped.
    for m in ac.find_iter(Input::new(buf)) {
        let pat = m.pattern().as_usize();
        let at = if pat == TAI64N {
            m.start() + 1
        } else {
            m.start()
        };
        if at < pos {
            continue;
        }
        let start = memchr::memrchr(b'\n', &buf[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i);
        line += count_nl(&buf[counted_to..start]);
        counted_to = start;
        let disconnect_pid = if pat == DISCONNECT {
            pid_before(buf, at)
        } else {
            None
        };
        hits.push(Hit {
            start,
            end,
            line,
            disconnect_pid,
            text: (0, 0),
            head: None,
        });
        pos = end + 1;
    }
    line += count_nl(&buf[counted_to.min(buf.len())..]);
    line - first_line
}

/// Reads a log into chunks that end on a line boundary and scans them.
pub struct Producer<R> {
    r: R,
    chunk: usize,
    /// The unfinished last line of the previous chunk.
    carry: Vec<u8>,
    /// Number of the next chunk's first line.
    line: u64,
    eof: bool,
    /// A read error (corrupt or truncated gzip): the lines before it are still handed out,
    /// then `next_chunk` returns it once.
    error: Option<std::io::Error>,
    years: YearRule,
    live: PidSet,
}

impl<R: Read> Producer<R> {
    /// `years` must be the parser's rule (the producer splits headers for it).
    pub fn new(r: R, chunk: usize, years: YearRule) -> Producer<R> {
        Producer {
            r,
            chunk: chunk.max(64),
            carry: Vec::new(),
            line: 1,
            eof: false,
            error: None,
            years,
            live: PidSet::new(),
        }
    }

    /// Fill `c` with the next chunk; false at the end of input.
    pub fn next_chunk(&mut self, c: &mut Chunk) -> std::io::Result<bool> {
        if self.eof {
            return match self.error.take() {
                Some(e) => Err(e),
                None => Ok(false),
            };
        }
        c.hits.clear();
        c.lines = 0;
        c.too_long = 0;
        if c.buf.len() < self.chunk.max(2 * self.carry.len()) {
            c.buf = vec![0; self.chunk.max(2 * self.carry.len())];
        }
        c.buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut filled = self.carry.len();
        let mut searched = filled;
        self.carry.clear();
        let complete = loop {
            // Fill the buffer (a pipe or decoder returns less than asked).
            while filled < c.buf.len() {
                match self.r.read(&mut c.buf[filled..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Keep what was read: this chunk ends here, the error comes next.
                    Err(e) => {
                        self.error = Some(e);
                        self.eof = true;
                        break;
                    }
                }
            }
            if self.eof {
                break filled;
            }
            if let Some(i) = memchr::memrchr(b'\n', &c.buf[searched..filled]) {
                break searched + i + 1;
            }
            searched = filled;
            if c.buf.len() >= MAX_LINE {
                // One enormous line: drop what we have of it; the rest up to its newline
                // is read as a line of its own.
                c.too_long += 1;
                filled = 0;
                searched = 0;
            } else {
                c.buf.resize(c.buf.len() * 2, 0);
            }
        };
        self.carry.extend_from_slice(&c.buf[complete..filled]);
        c.len = complete;
        let text = &c.buf[..complete];
        let nl = scan(text, self.line, &mut c.hits);
        // An unterminated last line (end of input) is a line too.
        c.lines = nl + u64::from(text.last().is_some_and(|&b| b != b'\n'));
        self.line += nl;
        c.decode(&self.years, &mut self.live);
        Ok(true)
    }
}

/// Parse the hits of one chunk.
fn consume(c: &Chunk, input: &str, an: &mut Analyzer) {
    an.stats.lines += c.lines;
    an.stats.bad += c.too_long;
    let mut own = String::new();
    for h in &c.hits {
        let (line, spans) = match h.disconnect_pid {
            // Most disconnect lines close sessions nobody waits for.
            Some(pid) if !an.postfix.may_wait(pid) => continue,
            // Decoded by the producer, or (its guess was wrong) not yet.
            Some(_) if h.head.is_none() => {
                own.clear();
                push_decoded(&mut own, c.text().get(h.start..h.end).unwrap_or(&[]));
                let spans = head_of(&own, &an.years, None);
                (own.as_str(), spans)
            }
            _ => (c.line(h), h.head),
        };
        an.stats.examined += 1;
        let Some(spans) = spans else {
            continue;
        };
        let o = Origin::new(input, h.line);
        an.feed_header(&spans.header(line), &o);
    }
}

/// Stream a whole log through the pre-filter, reading on a second thread when possible.
pub fn stream_log<R: Read + Send>(r: R, input: &str, an: &mut Analyzer) -> std::io::Result<()> {
    stream_log_with(r, input, an, CHUNK, true)
}

fn stream_log_with<R: Read + Send>(
    r: R,
    input: &str,
    an: &mut Analyzer,
    chunk: usize,
    threaded: bool,
) -> std::io::Result<()> {
    let mut p = Producer::new(r, chunk, an.years.clone());
    if threaded {
        if let Some(res) = threaded_run(&mut p, input, an) {
            return res;
        }
        // No thread could be started: read on this one.
    }
    let mut c = Chunk::default();
    while p.next_chunk(&mut c)? {
        consume(&c, input, an);
    }
    Ok(())
}

/// The producer on a thread of its own, the parser on this one; None when the thread could
/// not be started (nothing was read then).
fn threaded_run<R: Read + Send>(
    p: &mut Producer<R>,
    input: &str,
    an: &mut Analyzer,
) -> Option<std::io::Result<()>> {
    use std::sync::mpsc::sync_channel;
    let (full_tx, full_rx) = sync_channel::<std::io::Result<Chunk>>(IN_FLIGHT);
    let (free_tx, free_rx) = sync_channel::<Chunk>(IN_FLIGHT + 1);
    std::thread::scope(|scope| {
        let started = std::thread::Builder::new()
            .name("log-reader".into())
            .spawn_scoped(scope, move || loop {
                // Reuse a buffer the parser is done with; a new one only while the pipeline
                // fills (at most IN_FLIGHT + 2 exist).
                let mut c = free_rx.try_recv().unwrap_or_default();
                let sent = match p.next_chunk(&mut c) {
                    Ok(true) => full_tx.send(Ok(c)),
                    Ok(false) => return,
                    Err(e) => {
                        // An error ends the input: a decoder may repeat it forever.
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                };
                if sent.is_err() {
                    // The parser stopped: stop reading.
                    return;
                }
            });
        if started.is_err() {
            return None;
        }
        // Owned by this closure, so it is dropped (and a blocked producer's send fails) when
        // the closure returns, before the scope joins the producer.
        let full_rx = full_rx;
        for c in full_rx.iter() {
            match c {
                Ok(c) => {
                    consume(&c, input, an);
                    let _ = free_tx.try_send(c);
                }
                // Dropping the receiver at return stops the producer.
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(()))
    })
}

/// Open a log (`-` is standard input), decompressing gzip (also multi-member, as logrotate
/// and `cat a.gz b.gz` make) by its magic bytes rather than its name. A file that cannot be
/// opened is an error; one that fails while being read (corrupt or truncated gzip) keeps the
/// lines read before and adds the failure to `stats.read_errors`.
pub fn stream_path(p: &Path, an: &mut Analyzer) -> Result<(), String> {
    let name = p.display().to_string();
    an.stats.inputs.push(name.clone());
    let offset = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let lines_before = an.stats.lines;
    let res = if name == "-" {
        // Not the locked handle: the reader thread needs a handle it can take along.
        let mut r = std::io::BufReader::with_capacity(
            1 << 16,
            Counting::new(std::io::stdin(), offset.clone()),
        );
        let gz = r
            .fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
        if gz {
            stream_log(flate2::bufread::MultiGzDecoder::new(r), "stdin", an)
        } else {
            stream_log(r, "stdin", an)
        }
    } else {
        let mut f = std::fs::File::open(p).map_err(|e| format!("{name}: {e}"))?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(format!("{name}: is a directory, not a log file"));
        }
        let mut magic = [0u8; 2];
        let got = f.read(&mut magic).map_err(|e| format!("{name}: {e}"))?;
        let head = std::io::Cursor::new(magic[..got].to_vec());
        let chained = Counting::new(head.chain(f), offset.clone());
        if got == 2 && magic == [0x1f, 0x8b] {
            stream_log(flate2::read::MultiGzDecoder::new(chained), &name, an)
        } else {
            stream_log(chained, &name, an)
        }
    };
    if let Err(e) = res {
        let shown = if name == "-" { "standard input" } else { &name };
        let msg = format!(
            "{shown}: read error after byte {} of the input ({e}); the {} lines before it are in the report",
            offset.load(std::sync::atomic::Ordering::Relaxed),
            an.stats.lines - lines_before
        );
        an.stats.read_errors.push(msg);
    }
    Ok(())
}

/// A reader that counts the bytes it has handed out (the position of a read error in the
/// file, before decompression).
struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> Counting<R> {
    fn new(inner: R, n: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        Counting { inner, n }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.n
            .fetch_add(got as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(got)
    }
}

/// Pasted text: every line is examined; indented lines continue the previous one (bounces
/// wrap long replies).
pub fn stream_text<R: BufRead>(mut r: R, input: &str, an: &mut Analyzer) -> Result<(), String> {
    an.stats.inputs.push(input.to_string());
    let mut pending = String::new();
    let mut pending_line = 0u64;
    let mut n = 0u64;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let got = r.read_until(b'\n', &mut raw).map_err(|e| e.to_string())?;
        if got == 0 {
            break;
        }
        n += 1;
        an.stats.lines += 1;
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.starts_with([' ', '\t']) && !pending.is_empty() {
            pending.push(' ');
            pending.push_str(text.trim());
            continue;
        }
        if !pending.is_empty() {
            an.feed(&pending, &Origin::new(input, pending_line));
        }
        pending = text.to_string();
        pending_line = n;
    }
    if !pending.is_empty() {
        an.feed(&pending, &Origin::new(input, pending_line));
    }
    Ok(())
}

/// Whether the file at `p` looks like a mail log rather than configuration: its first lines
/// (after gzip decompression when it is compressed) start with a log timestamp, which no
/// Postfix, Exim or qmail configuration file does. Used to tell a user who passed a log as
/// explain's configuration PATH to use `--log FILE`. Unreadable files are not logs here.
/// `root` is the --root snapshot `p` lies in (None: the live system).
pub fn looks_like_log(root: Option<&Path>, p: &Path) -> bool {
    // Through crate::contain: inside a --root snapshot, never a FIFO (open would block).
    let Ok((f, _)) = crate::contain::open_regular(root, p, u64::MAX) else {
        return false;
    };
    let mut head = Vec::with_capacity(8192);
    let mut r = std::io::BufReader::new(f);
    let gz = r.fill_buf().is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    let got = if gz {
        flate2::bufread::MultiGzDecoder::new(r)
            .take(8192)
            .read_to_end(&mut head)
    } else {
        r.take(8192).read_to_end(&mut head)
    };
    if got.is_err() && head.is_empty() {
        return false;
    }
    // The first line decides: Exim's rejectlog follows each entry with unstamped header
    // lines, and configuration files never begin with a timestamp.
    let years = super::stamp::YearRule::new(Some(2000), 0);
    head.split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .is_some_and(|l| super::stamp::parse_prefix(l, &years).is_some())
}

/// The files to read for `--log`: each as given, preceded (with `--rotated`) by its rotated
/// siblings, oldest first: `FILE.N[.gz]` by descending N, then `FILE-YYYYMMDD[.gz]` (dateext).
pub fn expand(logs: &[PathBuf], rotated: bool) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for l in logs {
        if !rotated || l.as_os_str() == "-" {
            out.push(l.clone());
            continue;
        }
        let dir = l
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Some(base) = l.file_name().and_then(|b| b.to_str()) else {
            out.push(l.clone());
            continue;
        };
        let mut numbered: Vec<(u64, PathBuf)> = Vec::new();
        let mut dated: Vec<(String, PathBuf)> = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for ent in entries.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(base) else {
                continue;
            };
            let rest = rest.strip_suffix(".gz").unwrap_or(rest);
            if let Some(num) = rest.strip_prefix('.') {
                if let Ok(n) = num.parse::<u64>() {
                    numbered.push((n, ent.path()));
                }
            } else if let Some(date) = rest.strip_prefix('-') {
                if date.len() >= 8 && date.bytes().all(|b| b.is_ascii_digit()) {
                    dated.push((date.to_string(), ent.path()));
                }
            }
        }
        numbered.sort_by_key(|b| std::cmp::Reverse(b.0));
        dated.sort();
        out.extend(numbered.into_iter().map(|x| x.1));
        out.extend(dated.into_iter().map(|x| x.1));
        out.push(l.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::stamp::YearRule;
    use crate::explain::Sink;

    fn analyzer() -> Analyzer {
        Analyzer::new(
            YearRule::new(Some(2026), 0),
            false,
            Sink::Events(Vec::new()),
        )
    }

    /// The slow path: every line decoded and parsed, no pre-filter.
    fn slow(text: &[u8]) -> Analyzer {
        let mut an = analyzer();
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if text.ends_with(b"\n") || text.is_empty() {
            lines.pop();
        }
        for (n, l) in (1..).zip(&lines) {
            an.stats.lines += 1;
            let o = Origin::new("t", n);
            an.feed(&String::from_utf8_lossy(l), &o);
        }
        an.finish();
        an
    }

    fn fast(text: &[u8], chunk: usize, threaded: bool) -> Analyzer {
        let mut an = analyzer();
        stream_log_with(text, "t", &mut an, chunk, threaded).unwrap();
        an.finish();
        an
    }

    fn events(an: &Analyzer) -> Vec<String> {
        match &an.sink {
            Sink::Events(v) => v.iter().map(|e| format!("{e:?}")).collect(),
            Sink::Groups(_) => Vec::new(),
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/logs")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A generated mix in the shape of scripts/bench.d/explain's log, with the awkward cases:
    /// pid reuse across hosts and services, sessions interleaved, CRLF, invalid UTF-8, a
    /// disconnect line of a pid with too many digits, lines without a header.
    fn synthetic() -> Vec<u8> {
        let mut s = String::new();
        let mut x: u32 = 7;
        let mut rnd = |n: u32| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 8) % n
        };
        let progs = [
            "postfix/smtpd",
            "postfix/submission/smtpd",
            "postfix/smtps/smtpd",
        ];
        for i in 0..3000u32 {
            let pid = 100 + rnd(40);
            let prog = progs[rnd(3) as usize];
            let host = ["mx", "mx2"][rnd(2) as usize];
            let t = format!(
                "Nov {:2} {:02}:{:02}:{:02}",
                1 + i / 2000,
                (i / 60) % 24,
                i % 60,
                i % 60
            );
            let head = format!("{t} {host} {prog}[{pid}]:");
            let ip = format!("198.51.{}.{}", rnd(3), rnd(200));
            match rnd(12) {
                0 => s.push_str(&format!("{head} NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <u{i}@ext.example>: Relay access denied; from=<a@b.example> to=<u{i}@ext.example> proto=ESMTP helo=<pc>\n")),
                1 => s.push_str(&format!("{head} ABC{i}: client=pc[{ip}], sasl_method=PLAIN, sasl_username=user{}\n", rnd(5))),
                2 => s.push_str(&format!("{head} disconnect from pc[{ip}] ehlo=1 auth={} mail=1 commands=3\n", ["1", "0/1", "1/2"][rnd(3) as usize])),
                3 => s.push_str(&format!("{head} disconnect from pc[{ip}] ehlo=1 mail=1 commands=3\r\n")),
                4 => s.push_str(&format!("{head} warning: pc[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user{}\n", rnd(5))),
                5 => s.push_str(&format!("{head} NOQUEUE: reject: RCPT from pc[{ip}]: 554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; from=<s@x> to=<info@example.com> proto=SMTP helo=<x>\n")),
                6 => s.push_str(&format!("{t} {host} postfix/smtp[{pid}]: Q{i}: to=<r{i}@ext.example>, relay=mx.ext[192.0.2.1]:25, delay=1, dsn=4.7.1, status=deferred (host mx.ext[192.0.2.1] said: 450 4.7.1 <r{i}@ext.example>: Recipient address rejected: Greylisted (in reply to RCPT TO command))\n")),
                7 => s.push_str(&format!("{t} {host} dovecot: imap-login: Login: user=<u@example.com>, method=PLAIN, rip={ip}\n")),
                8 => s.push_str(&format!("{head} NOQUEUE: reject: RCPT from b\u{e4}d[{ip}]: 554 5.7.1 <x@y>: Relay access denied; from=<> to=<x@y>\n")),
                9 => s.push_str(&format!("{t} {host} postfix/smtpd[1234567890]: disconnect from pc[{ip}] auth=1\n")),
                10 => s.push_str(&format!("{head} connect from pc[{ip}]\n")),
                _ => s.push_str("just words, disconnect from nowhere, and a reject: without a header\n"),
            }
        }
        let mut b = s.into_bytes();
        // qmail-smtpd transcripts with replies no needle names (multilog label; program).
        b.extend_from_slice(b"@400000006b0a416900000000 4715 > 554 too many hops, this message is looping (#5.4.6)\n");
        b.extend_from_slice(
            b"Nov  3 01:00:00 mx qmail-smtpd[77]: 4716 > 451 DNS temporary failure (#4.3.0)\n",
        );
        // Invalid UTF-8 inside a hit.
        b.extend_from_slice(b"Nov  3 01:00:00 mx postfix/smtpd[101]: NOQUEUE: reject: RCPT from pc[203.0.113.1]: 554 5.7.1 <\xff@x>: Relay access denied; from=<> to=<\xff@x>\n");
        b
    }

    fn inputs() -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = [
            "postfix-real.log",
            "exim-mainlog",
            "exim-rejectlog",
            "qmail-patches.log",
            "bounces.txt",
        ]
        .iter()
        .map(|n| (n.to_string(), fixture(n)))
        .collect();
        v.push(("synthetic".into(), synthetic()));
        // All of them as one log (state of one parser must not leak into another's lines),
        // without the final newline.
        let mut all: Vec<u8> = v.iter().flat_map(|(_, b)| b.clone()).collect();
        all.pop();
        v.push(("all".into(), all));
        v
    }

    #[test]
    fn fast_path_equals_slow_path() {
        for (name, text) in inputs() {
            let want = slow(&text);
            for (chunk, threaded) in [
                (CHUNK, true),
                (CHUNK, false),
                (64, false),
                (200, true),
                (4096, true),
            ] {
                let got = fast(&text, chunk, threaded);
                let ctx = format!("{name}, chunk {chunk}, threaded {threaded}");
                assert_eq!(events(&got), events(&want), "{ctx}");
                assert_eq!(got.stats.events, want.stats.events, "{ctx}");
                assert_eq!(got.stats.bad, want.stats.bad, "{ctx}");
                assert_eq!(got.stats.lines, want.stats.lines, "{ctx}");
            }
            assert!(want.stats.events > 0 || name == "bounces.txt", "{name}");
        }
    }

    #[test]
    fn a_line_the_filter_drops_is_never_an_event() {
        for (name, text) in inputs() {
            for (n, line) in (1..).zip(text.split(|&b| b == b'\n')) {
                if passes(line) {
                    continue;
                }
                let an = slow(line);
                assert!(
                    events(&an).is_empty() && an.stats.bad == 0,
                    "{name}:{n} dropped but {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        // And the filter does drop the bulk of an ordinary log.
        let text = synthetic();
        let dropped = text.split(|&b| b == b'\n').filter(|l| !passes(l)).count();
        assert!(dropped > 300, "{dropped}");
    }

    #[test]
    fn chunks_end_on_line_boundaries_and_count_every_line() {
        let text = b"a\nbb\n\nlong line reject: x\nlast without newline";
        for chunk in [64, 65, 100] {
            let mut p = Producer::new(&text[..], chunk, YearRule::new(Some(2026), 0));
            let mut c = Chunk::default();
            let (mut lines, mut hits, mut joined) = (0, Vec::new(), Vec::new());
            while p.next_chunk(&mut c).unwrap() {
                lines += c.lines;
                hits.extend(
                    c.hits
                        .iter()
                        .map(|h| (h.line, c.text()[h.start..h.end].to_vec())),
                );
                joined.extend_from_slice(c.text());
            }
            assert_eq!(lines, 5);
            assert_eq!(joined, text.to_vec());
            assert_eq!(hits, vec![(4, b"long line reject: x".to_vec())]);
        }
        assert_eq!(pid_before(b"smtpd[123]: ", 12), Some(123));
        assert_eq!(pid_before(b"smtpd[1234567890]: ", 19), None);
        assert_eq!(pid_before(b"smtpd 123]: ", 12), None);
    }

    #[test]
    fn a_log_given_as_configuration_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let cf = dir.path().join("main.cf");
        std::fs::write(&cf, "# comment\nmyhostname = mx.example.com\n").unwrap();
        assert!(!looks_like_log(None, &cf));
        assert!(!looks_like_log(None, dir.path()));
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs");
        for f in [
            "postfix-real.log",
            "exim-mainlog",
            "exim-rejectlog",
            "qmail-patches.log",
        ] {
            assert!(looks_like_log(None, &p.join(f)), "{f}");
        }
    }
}
