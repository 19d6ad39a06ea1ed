//! The million-domain control files checked in pieces, without holding them.
//!
//! On a big hosting server control/morercpthosts, morercpthosts.cdb and virtualdomains hold
//! a line per hosted domain, and almost always agree: qmail-newmrh was run after the last
//! edit and the panel added each domain to both lists. Reading them whole (and indexing
//! every line so that findings can show it) costs a hundred megabytes of fresh memory, and
//! the page faults for it cost more than the check itself. So `lint` first streams the three
//! files in fixed-size pieces and proves, line by line, that the full check would find
//! nothing in them:
//!
//! - every line is a "plain" entry (no blank, tab, carriage return, '#', NUL or non-ASCII
//!   byte, not empty; no ':' in morercpthosts; a ':' in virtualdomains), so the grammar
//!   has exactly one parse for it and no QM015, RD002 or RD003 applies (a '#' anywhere
//!   also rules out suppression comments, which only loaded files can carry);
//! - the cdb's keys are the morercpthosts lines lowercased, in order, and nothing else
//!   (what qmail-newmrh writes): no QM004;
//! - every virtualdomains domain is accepted by rcpthosts or the cdb: no QM003.
//!
//! Anything else, anywhere, and the caller loads the files whole and runs the usual checks,
//! which then say what is wrong with file:line. The answer is the same either way;
//! `tests::streamed_and_loaded_agree` holds the two paths together.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::model::CdbState;

/// Bytes read at a time. A line longer than this gives up (the full check handles it).
const CHUNK: usize = 1 << 20;

/// Domains that do not line up with morercpthosts and wait for a cdb lookup; more than
/// this and the full check (which has the whole cdb in memory) is no slower.
const MAX_PENDING: usize = 1 << 16;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const M7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// High bit set in each byte of `x` that is not zero (exact: no borrow between bytes).
fn nonzero(x: u64) -> u64 {
    (((x & M7) + M7) | x) & HI
}

/// One 8-byte word: (newline bytes, whether any byte rules the fast path out). A byte is
/// ruled out when it is below '$' (NUL, tab, CR, blank, '!', '"', '#') other than '\n', or
/// not ASCII, or a ':' when `colon` is set.
fn classify(w: u64, colon: bool) -> (u64, bool) {
    let nl = !nonzero(w ^ (LO * 0x0a)) & HI;
    // (b & 0x7f) + 0x5c has its high bit set exactly when (b & 0x7f) >= 0x24; no carry.
    let ge24 = ((w & M7) + LO * 0x5c) & HI;
    let mut bad = (!ge24 & !nl & HI) | (w & HI);
    if colon {
        bad |= !nonzero(w ^ (LO * 0x3a)) & HI;
    }
    (nl, bad != 0)
}

fn bad_byte(b: u8, colon: bool) -> bool {
    (b < 0x24 && b != b'\n') || b >= 0x80 || (colon && b == b':')
}

/// Line ranges of `bytes` (every line ends with '\n', except a last one when `eof`), or
/// None when a byte or an empty line rules the fast path out.
fn scan(bytes: &[u8], colon: bool, eof: bool, ranges: &mut Vec<(usize, usize)>) -> Option<()> {
    ranges.clear();
    let mut start = 0usize;
    let push = |ranges: &mut Vec<(usize, usize)>, start: &mut usize, end: usize| -> Option<()> {
        if end == *start {
            return None; // an empty line: the grammar's business
        }
        ranges.push((*start, end));
        *start = end + 1;
        Some(())
    };
    let mut words = bytes.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut words {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (mut nl, bad) = classify(w, colon);
        if bad {
            return None;
        }
        while nl != 0 {
            push(
                ranges,
                &mut start,
                base + (nl.trailing_zeros() / 8) as usize,
            )?;
            nl &= nl - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if bad_byte(b, colon) {
            return None;
        }
        if b == b'\n' {
            push(ranges, &mut start, base + i)?;
        }
    }
    if eof && start < bytes.len() {
        push(ranges, &mut start, bytes.len())?;
    }
    Some(())
}

/// A control file read line by line through one reused buffer.
struct Lines {
    file: File,
    buf: Vec<u8>,
    /// Bytes of `buf` that hold data.
    len: usize,
    /// Bytes of `buf` covered by `ranges` (complete lines).
    done: usize,
    ranges: Vec<(usize, usize)>,
    next: usize,
    eof: bool,
    colon: bool,
}

impl Lines {
    /// The file at `path` if it is a regular file qmail's loader would accept in full;
    /// Err(()) when it exists but is not (the full check reports it), Ok(None) when absent.
    fn open(path: &Path, colon: bool) -> Result<Option<Lines>, ()> {
        let meta = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err(()),
            Ok(m) => m,
        };
        if !meta.is_file() || meta.len() > crate::source::MAX_FILE_BYTES {
            return Err(());
        }
        // Not through a symlink (it may leave a snapshot: the full check, which reads
        // inside the root, handles those) and never blocking on a FIFO swapped in.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(|_| ())?
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(());
        }
        Ok(Some(Lines {
            file,
            buf: vec![0; CHUNK],
            len: 0,
            done: 0,
            ranges: Vec::with_capacity(CHUNK / 16),
            next: 0,
            eof: false,
            colon,
        }))
    }

    /// Read the next piece and split it into lines. Ok(false) at the end of the file.
    fn fill(&mut self) -> Result<bool, ()> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.done..self.len, 0);
        self.len -= self.done;
        self.done = 0;
        while self.len < self.buf.len() {
            match self.file.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        let data = &self.buf[..self.len];
        let end = if self.eof {
            self.len
        } else {
            // Complete lines only; a line longer than the buffer gives up.
            data.iter().rposition(|&b| b == b'\n').ok_or(())? + 1
        };
        scan(&data[..end], self.colon, self.eof, &mut self.ranges).ok_or(())?;
        self.done = end;
        self.next = 0;
        Ok(!self.ranges.is_empty())
    }

    /// The line under the cursor, without its '\n'.
    fn peek(&mut self) -> Result<Option<&[u8]>, ()> {
        while self.next >= self.ranges.len() {
            if !self.fill()? {
                return Ok(None);
            }
        }
        let (s, e) = self.ranges[self.next];
        Ok(self.buf.get(s..e))
    }

    fn advance(&mut self) {
        self.next += 1;
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>, ()> {
        while self.next >= self.ranges.len() {
            if !self.fill()? {
                return Ok(None);
            }
        }
        let (s, e) = self.ranges[self.next];
        self.next += 1;
        Ok(self.buf.get(s..e))
    }
}

/// What the streamed check established.
pub struct Streamed {
    /// The cdb, checked and holding exactly the morercpthosts domains.
    pub cdb: CdbState,
    /// virtualdomains domains that did not line up with morercpthosts: each must still be
    /// accepted by rcpthosts or the cdb (the caller looks them up).
    pub pending: Vec<String>,
    /// virtualdomains exists (and was read).
    pub virtualdomains: bool,
}

/// Stream morercpthosts, its cdb and virtualdomains in `dir`. None when anything would
/// need the full check (or when the files are not there to be streamed).
pub fn check(dir: &Path) -> Option<Streamed> {
    let more_path = dir.join("morercpthosts");
    let cdb_path = dir.join("morercpthosts.cdb");
    if std::fs::symlink_metadata(&cdb_path).is_ok_and(|m| m.file_type().is_symlink()) {
        return None;
    }
    std::thread::scope(|sc| {
        // morercpthosts against its cdb, in lockstep: qmail-newmrh writes one record per
        // line, lowercased, in file order.
        let a = sc.spawn(|| -> Option<CdbState> {
            let mut more = Lines::open(&more_path, true).ok()??;
            let mut same = true;
            // Symlinks were refused above: the path is read as it is.
            let cdb = CdbState::load_with(None, &cdb_path, |k| {
                if same {
                    same = matches!(more.next_line(), Ok(Some(l))
                        if k.eq_ignore_ascii_case(l) && !k.iter().any(u8::is_ascii_uppercase));
                }
            });
            (same && cdb.cdb().is_some() && matches!(more.next_line(), Ok(None))).then_some(cdb)
        });
        // virtualdomains against morercpthosts (read a second time, by a cursor), here.
        let b = (|| -> Option<(Vec<String>, bool)> {
            let Ok(vd) = Lines::open(&dir.join("virtualdomains"), false) else {
                return None;
            };
            let Some(mut vd) = vd else {
                return Some((Vec::new(), false));
            };
            let mut more = Lines::open(&more_path, true).ok()??;
            let mut pending = Vec::new();
            while let Some(line) = vd.next_line().ok()? {
                // No ':' is a line qmail-send ignores (QM015): the full check says so.
                let key = line.split(|&b| b == b':').next()?;
                if key.len() == line.len() {
                    return None;
                }
                let d = key.rsplit(|&b| b == b'@').next().unwrap_or(key);
                // The same keys checks.rs skips (refused): no domain, localhost, [a.d.d.r].
                if d.is_empty() || d.eq_ignore_ascii_case(b"localhost") || d.first() == Some(&b'[')
                {
                    continue;
                }
                let lined_up = matches!(more.peek().ok()?, Some(m) if m.eq_ignore_ascii_case(d));
                if lined_up {
                    more.advance();
                    continue;
                }
                if pending.len() >= MAX_PENDING {
                    return None;
                }
                // ASCII (checked by scan), so this is the lowercased domain.
                pending.push(String::from_utf8_lossy(d).to_ascii_lowercase());
            }
            Some((pending, true))
        })();
        let cdb = a.join().ok()??;
        let (pending, virtualdomains) = b?;
        Some(Streamed {
            cdb,
            pending,
            virtualdomains,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_matches_the_byte_rule() {
        for colon in [false, true] {
            for b in 0..=255u8 {
                for pos in 0..8 {
                    let mut w = [b'a'; 8];
                    w[pos] = b;
                    let (nl, bad) = classify(u64::from_le_bytes(w), colon);
                    assert_eq!(bad, bad_byte(b, colon), "byte {b:#x} at {pos}");
                    assert_eq!(nl != 0, b == b'\n', "byte {b:#x} at {pos}");
                    if b == b'\n' {
                        assert_eq!(nl.trailing_zeros() / 8, pos as u32);
                    }
                }
            }
        }
    }

    #[test]
    fn scan_splits_lines_and_refuses_odd_ones() {
        let mut r = Vec::new();
        assert!(scan(b"a.example\nbb.example.com\nc", false, true, &mut r).is_some());
        assert_eq!(r, vec![(0, 9), (10, 24), (25, 26)]);
        assert!(
            scan(b"a\n\nb\n", false, true, &mut r).is_none(),
            "empty line"
        );
        assert!(
            scan(b"a.example \n", false, true, &mut r).is_none(),
            "blank"
        );
        assert!(scan(b"a.example\r\n", false, true, &mut r).is_none(), "CR");
        assert!(scan(b"#x\n", false, true, &mut r).is_none(), "comment");
        assert!(scan("d\u{e9}.example\n".as_bytes(), false, true, &mut r).is_none());
        assert!(scan(b"a:b\n", true, true, &mut r).is_none(), "colon");
        assert!(scan(b"a:b\n", false, true, &mut r).is_some());
    }

    #[test]
    fn lines_cross_buffer_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("client{i}.example\n"));
        }
        text.push_str("last.example");
        std::fs::write(&p, &text).unwrap();
        let mut l = Lines::open(&p, true).unwrap().unwrap();
        let mut n = 0;
        let mut want = text.lines();
        while let Some(line) = l.next_line().unwrap() {
            assert_eq!(Some(line), want.next().map(str::as_bytes));
            n += 1;
        }
        assert_eq!(n, 200_001);
    }

    /// Lint a control directory both ways: (findings as text, files read, streamed?).
    fn lint_both(dir: &Path) -> [(Vec<String>, usize, bool); 2] {
        use crate::context::{Context, Options, Root};
        [false, true].map(|stream| {
            let ctx = Context::new(Root::live(), Options::default());
            let mut f = Vec::new();
            let c = super::super::model::load_control_with(&ctx, dir, &mut f, stream);
            let streamed = c.streamed;
            let m = super::super::model::Model {
                control: Some(c),
                rules: Vec::new(),
                services: Vec::new(),
                standalone: false,
            };
            super::super::checks::run(&ctx, &m, &mut f);
            let mut v: Vec<String> = f
                .iter()
                .map(|f| format!("{} {:?} {}", f.code, f.location, f.message))
                .collect();
            v.sort();
            (v, ctx.files_read(), streamed)
        })
    }

    /// A case: name, morercpthosts, morercpthosts.cdb, virtualdomains, whether the fast
    /// path streams it.
    type Case = (&'static str, String, Vec<u8>, Option<String>, bool);

    fn more(ds: &[String]) -> String {
        ds.iter().map(|d| format!("{d}\n")).collect()
    }

    fn vd(ds: &[String]) -> String {
        ds.iter().map(|d| format!("{d}:{d}\n")).collect()
    }

    fn cdb_of(ds: &[String]) -> Vec<u8> {
        let keys: Vec<String> = ds.iter().map(|d| d.to_ascii_lowercase()).collect();
        let recs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), &b""[..])).collect();
        crate::qmail::cdb::build(&recs)
    }

    /// Keys as given (qmail-newmrh would have lowercased them).
    fn cdb_raw(ds: &[String]) -> Vec<u8> {
        let recs: Vec<(&[u8], &[u8])> = ds.iter().map(|k| (k.as_bytes(), &b""[..])).collect();
        crate::qmail::cdb::build(&recs)
    }

    /// Control files the fast path streams: consistent ones, in any order or case.
    fn streamed_cases(domains: &[String]) -> Vec<Case> {
        let mut shuffled = domains.to_vec();
        shuffled.reverse();
        let mut upper = domains.to_vec();
        upper[5] = upper[5].to_ascii_uppercase();
        vec![
            (
                "consistent",
                more(domains),
                cdb_of(domains),
                Some(vd(domains)),
                true,
            ),
            (
                "no virtualdomains",
                more(domains),
                cdb_of(domains),
                None,
                true,
            ),
            (
                "other order",
                more(domains),
                cdb_of(domains),
                Some(vd(&shuffled)),
                true,
            ),
            (
                "upper case source",
                more(&upper),
                cdb_of(&upper),
                Some(vd(&upper)),
                true,
            ),
            (
                "user@ keys",
                more(domains),
                cdb_of(domains),
                Some(format!(
                    "joe@{}:joe\nlocalhost:x\n[1.2.3.4]:y\n@:z\n",
                    domains[3]
                )),
                true,
            ),
        ]
    }

    /// Control files the fast path steps aside for: stale or broken ones, and text qmail
    /// reads differently from a plain list.
    fn fallback_cases(domains: &[String]) -> Vec<Case> {
        let mut upper = domains.to_vec();
        upper[5] = upper[5].to_ascii_uppercase();
        let mut fewer = domains.to_vec();
        fewer.pop();
        vec![
            (
                "stale cdb",
                more(domains),
                cdb_of(&fewer),
                Some(vd(domains)),
                false,
            ),
            (
                "extra in cdb",
                more(&fewer),
                cdb_of(domains),
                Some(vd(&fewer)),
                false,
            ),
            (
                "refused",
                more(&fewer),
                cdb_of(&fewer),
                Some(vd(domains)),
                false,
            ),
            (
                "no final newline",
                more(domains).trim_end().into(),
                cdb_of(domains),
                Some(vd(domains).trim_end().into()),
                true,
            ),
            (
                "CRLF",
                more(domains).replace('\n', "\r\n"),
                cdb_of(domains),
                Some(vd(domains)),
                false,
            ),
            (
                "blank",
                more(domains).replacen('\n', " x\n", 1),
                cdb_of(domains),
                Some(vd(domains)),
                false,
            ),
            (
                "comment",
                format!("# hosted\n{}", more(domains)),
                cdb_of(domains),
                None,
                false,
            ),
            (
                "empty line",
                format!("\n{}", more(domains)),
                cdb_of(domains),
                None,
                false,
            ),
            (
                "colon in more",
                more(domains).replacen('\n', ":x\n", 1),
                cdb_of(domains),
                None,
                false,
            ),
            (
                "no colon in vd",
                more(domains),
                cdb_of(domains),
                Some(format!("nocolon\n{}", vd(domains))),
                false,
            ),
            (
                "NUL",
                format!("a\0b\n{}", more(domains)),
                cdb_of(domains),
                None,
                false,
            ),
            (
                "latin-1",
                format!("caf\u{e9}.example\n{}", more(domains)),
                cdb_of(domains),
                None,
                false,
            ),
            ("bad cdb", more(domains), b"short".to_vec(), None, false),
            ("upper case cdb", more(&upper), cdb_raw(&upper), None, false),
        ]
    }

    #[test]
    fn streamed_and_loaded_agree() {
        let domains: Vec<String> = (0..3000)
            .map(|i| format!("client{i}.hosting-{}.example", i % 7))
            .collect();
        let mut cases = streamed_cases(&domains);
        cases.extend(fallback_cases(&domains));
        for (name, m, cdb, v, streams) in cases {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(
                d.path().join("rcpthosts"),
                "hosting.example\n.hosting-6.example\n",
            )
            .unwrap();
            std::fs::write(d.path().join("locals"), "localhost\n").unwrap();
            std::fs::write(d.path().join("morercpthosts"), m).unwrap();
            std::fs::write(d.path().join("morercpthosts.cdb"), cdb).unwrap();
            if let Some(v) = v {
                std::fs::write(d.path().join("virtualdomains"), v).unwrap();
            }
            let [full, fast] = lint_both(d.path());
            assert!(!full.2, "{name}: the plain load never streams");
            assert_eq!(fast.2, streams, "{name}: streamed?");
            assert_eq!(fast.0, full.0, "{name}: findings");
            assert_eq!(fast.1, full.1, "{name}: files read");
            // Comments and empty lines are fine for qmail: only the fast path steps aside.
            if !streams && !matches!(name, "comment" | "empty line") {
                assert!(!full.0.is_empty(), "{name}: the case should have findings");
            }
        }
    }
}
