//! Reading evidence: pasted text line by line, and whole mail logs streamed in fixed-size
//! chunks (plain or gzip, detected by content), with a byte-level pre-filter so that only
//! lines that can matter reach the parsers.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};

use super::event::Origin;
use super::Analyzer;

/// Substrings of every line kind a parser uses. Anything else in a mail log (deliveries,
/// queue manager, IMAP logins, ...) is skipped without being looked at.
const NEEDLES: &[&str] = &[
    "eject", // Postfix reject:, Exim rejected, chkuser rejected, Reject::, qlog result=rejected
    "sasl_username=", // Postfix client=... sasl_username= and SASL failures
    "disconnect from", // Postfix session summary (auth=)
    "sender verify", // Exim sender verify fail/defer
    "authenticator failed", // Exim AUTH failure
    "authentication failed", // Postfix SASL failure without user name
    " said: ", // Postfix smtp client: the remote server's reply
    "refused to talk to me", // Postfix smtp client: greeting refused
    "SMTP error from remote", // Exim: the remote server's reply
    "cpthosts", // qmail replies and spamcontrol Failed_Rcpthosts
    "auth-failed", // qmail AUTH patches
];

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

const CHUNK: usize = 1 << 20;
/// A single line longer than this is not a log line: it is skipped (counted as bad).
const MAX_LINE: usize = 1 << 24;

fn count_nl(b: &[u8]) -> u64 {
    // Byte sums over 64-byte blocks vectorise well (compare + horizontal add); one pass over
    // the input in total.
    let mut n = 0u64;
    let mut blocks = b.chunks_exact(64);
    for blk in &mut blocks {
        let s: u8 = blk.iter().map(|&c| (c == b'\n') as u8).sum();
        n += s as u64;
    }
    n + blocks.remainder().iter().filter(|&&c| c == b'\n').count() as u64
}

/// Index of "disconnect from" in NEEDLES: the commonest hit, with a fast path.
const DISCONNECT: usize = 2;

/// The pid of a `prog[pid]: disconnect from` line, read backwards from the match.
fn pid_before(buf: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_sub(3)?;
    if buf.get(end..at)? != b"]: " {
        return None;
    }
    let mut i = end;
    let mut pid: u32 = 0;
    let mut mul: u32 = 1;
    while i > 0 && buf[i - 1].is_ascii_digit() && end - i < 9 {
        pid += (buf[i - 1] - b'0') as u32 * mul;
        mul *= 10;
        i -= 1;
    }
    (end - i > 0).then_some(pid)
}

fn feed_bytes(an: &mut Analyzer, line: &[u8], input: &str, n: u64) {
    let o = Origin { input, line: n };
    match std::str::from_utf8(line) {
        Ok(s) => an.feed(s, &o),
        Err(_) => an.feed(&String::from_utf8_lossy(line), &o),
    }
}

/// Feed the pre-filter hits among the complete lines in `buf`; returns the lines counted.
fn scan(buf: &[u8], first_line: u64, input: &str, an: &mut Analyzer) -> u64 {
    let Some(ac) = prefilter() else {
        // Cannot happen (the patterns are constant); read every line instead.
        for (n, l) in (first_line..).zip(buf.split(|&b| b == b'\n')) {
            feed_bytes(an, l, input, n);
        }
        return count_nl(buf);
    };
    let mut pos = 0;
    let mut counted_to = 0;
    let mut line = first_line;
    // One search over the whole chunk; matches inside a line already handled are skipped.
    for m in ac.find_iter(Input::new(buf)) {
        if m.start() < pos {
            continue;
        }
        if m.pattern().as_usize() == DISCONNECT {
            // Most disconnect lines close sessions nobody waits for: skip them on the pid
            // alone, without finding the line or parsing its header.
            if let Some(pid) = pid_before(buf, m.start()) {
                if !an.postfix.may_wait(pid) {
                    continue;
                }
            }
        }
        let start = memchr::memrchr(b'\n', &buf[..m.start()]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &buf[m.start()..]).map_or(buf.len(), |i| m.start() + i);
        line += count_nl(&buf[counted_to..start]);
        counted_to = start;
        if m.pattern().as_usize() == DISCONNECT {
            if let Ok(text) = std::str::from_utf8(&buf[start..end]) {
                let o = Origin { input, line };
                an.disconnect_line(text.trim_end_matches('\r'), m.start() - start, &o);
                pos = end + 1;
                continue;
            }
        }
        feed_bytes(an, &buf[start..end], input, line);
        pos = end + 1;
    }
    line += count_nl(&buf[counted_to.min(buf.len())..]);
    line - first_line
}

/// Stream a whole log through the pre-filter.
pub fn stream_log<R: Read>(mut r: R, input: &str, an: &mut Analyzer) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut line = 1u64;
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_LINE {
                // One enormous line: drop it up to the next newline.
                an.stats.bad += 1;
                filled = 0;
            } else {
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = r.read(&mut buf[filled..])?;
        if n == 0 {
            if filled > 0 {
                let c = scan(&buf[..filled], line, input, an);
                an.stats.lines += c + 1;
            }
            return Ok(());
        }
        filled += n;
        let Some(last_nl) = buf[..filled].iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let c = scan(&buf[..last_nl + 1], line, input, an);
        line += c;
        an.stats.lines += c;
        buf.copy_within(last_nl + 1..filled, 0);
        filled -= last_nl + 1;
    }
}

/// Open a log (`-` is standard input), decompressing gzip (also multi-member, as logrotate
/// and `cat a.gz b.gz` make) by its magic bytes rather than its name.
pub fn stream_path(p: &Path, an: &mut Analyzer) -> Result<(), String> {
    let name = p.display().to_string();
    an.stats.inputs.push(name.clone());
    let res = if name == "-" {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let gz = lock
            .fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
        if gz {
            stream_log(flate2::bufread::MultiGzDecoder::new(lock), "stdin", an)
        } else {
            stream_log(lock, "stdin", an)
        }
    } else {
        let mut f = std::fs::File::open(p).map_err(|e| format!("{name}: {e}"))?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(format!("{name}: is a directory, not a log file"));
        }
        let mut magic = [0u8; 2];
        let got = f.read(&mut magic).map_err(|e| format!("{name}: {e}"))?;
        let head = std::io::Cursor::new(magic[..got].to_vec());
        let chained = head.chain(f);
        if got == 2 && magic == [0x1f, 0x8b] {
            stream_log(flate2::read::MultiGzDecoder::new(chained), &name, an)
        } else {
            stream_log(chained, &name, an)
        }
    };
    res.map_err(|e| format!("{name}: {e}"))
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
            an.feed(
                &pending,
                &Origin {
                    input,
                    line: pending_line,
                },
            );
        }
        pending = text.to_string();
        pending_line = n;
    }
    if !pending.is_empty() {
        an.feed(
            &pending,
            &Origin {
                input,
                line: pending_line,
            },
        );
    }
    Ok(())
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
