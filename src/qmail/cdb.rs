//! A small reader for D. J. Bernstein's constant database format (cdb), as written by
//! ucspi-tcp's `tcprules`, qmail's `qmail-newmrh` and tinycdb's `cdb -c`.
//!
//! Format (cr.yp.to/cdb/cdb.txt): a 2048-byte header of 256 (position, slots) pairs of
//! little-endian u32; then records `klen dlen key data`; then the 256 hash tables of
//! (hash, record position) slots. Hash: `h = 5381; h = ((h << 5) + h) ^ c`. A lookup
//! returns the first record with the key, which is what tcpserver and qmail-smtpd use.
//!
//! Every offset is checked: a truncated or corrupt file gives an error, never a panic.

/// A cdb file. `Cdb::read` checks the file with one buffered pass and keeps only its size
/// and path: the bytes are read into memory the first time a lookup or a record walk needs
/// them (a 50 MB morercpthosts.cdb that only has to be compared with its source, in file
/// order, is streamed and never held). Not memory-mapped: a file truncated under a mapping
/// would crash the process with SIGBUS.
#[derive(Debug)]
pub struct Cdb {
    data: std::sync::OnceLock<Vec<u8>>,
    /// Where to read the bytes from when they are first needed (None: given in memory).
    path: Option<std::path::PathBuf>,
    /// The snapshot `path` lies in (None: the live system): every later read of the file
    /// is contained in it like the first (crate::contain), never following a symlink out.
    root: Option<std::path::PathBuf>,
    /// Size of the file when it was checked.
    size: usize,
    /// Lookups made by positioned reads before the whole file was read (see `find`).
    piecemeal: std::sync::atomic::AtomicUsize,
    /// The file, opened for those reads.
    file: std::sync::OnceLock<Option<std::fs::File>>,
    /// End of the record area (start of the first hash table).
    records_end: usize,
}

/// One record: key and data, borrowed from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub data: &'a [u8],
}

/// Lookups made by positioned reads before a cdb file is read whole (see `Cdb::find`).
const PIECEMEAL: usize = 4096;

/// The cdb hash function.
pub fn hash(key: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for &c in key {
        h = (h.wrapping_shl(5).wrapping_add(h)) ^ u32::from(c);
    }
    h
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The record area's end from the 2048-byte header of a file of `size` bytes, or why the
/// header is wrong.
fn check_header(header: &[u8], size: usize) -> Result<usize, String> {
    if size < 2048 || header.len() < 2048 {
        return Err(format!(
            "{size} bytes is shorter than the 2048-byte cdb header (truncated or not a cdb file)"
        ));
    }
    let mut records_end = size;
    for i in 0..256 {
        let pos = u32_at(header, i * 8).unwrap_or(0) as usize;
        let slots = u32_at(header, i * 8 + 4).unwrap_or(0) as usize;
        if pos < 2048 || pos > size || slots.saturating_mul(8) > size - pos {
            return Err(format!(
                "hash table {i} points outside the file (position {pos}, {slots} slots): corrupt or truncated cdb"
            ));
        }
        records_end = records_end.min(pos);
    }
    Ok(records_end)
}

impl Cdb {
    /// Check the header and the record area; errors say what is wrong in plain words.
    pub fn parse(data: Vec<u8>) -> Result<Cdb, String> {
        let records_end = check_header(&data, data.len())?;
        let size = data.len();
        let cdb = Cdb {
            data: std::sync::OnceLock::from(data),
            path: None,
            root: None,
            size,
            piecemeal: Default::default(),
            file: Default::default(),
            records_end,
        };
        // Walk the records once so that iteration later cannot fail half-way.
        let mut off = 2048;
        while off < cdb.records_end {
            match cdb.record_at(off) {
                Some((_, next)) => off = next,
                None => {
                    return Err(format!(
                        "record at offset {off} runs past the record area: corrupt or truncated cdb"
                    ))
                }
            }
        }
        Ok(cdb)
    }

    pub fn read(path: &std::path::Path) -> Result<Cdb, String> {
        Cdb::read_with(path, |_| {})
    }

    /// `read`, calling `visit` with each record's key in file order during the checking
    /// pass (buffered reads, one reused key buffer: nothing is kept). Same checks and same
    /// errors as `parse`.
    pub fn read_with(path: &std::path::Path, visit: impl FnMut(&[u8])) -> Result<Cdb, String> {
        Cdb::read_in(None, path, visit)
    }

    /// `read_with` for a file under the snapshot `root` (None: the live system): opened
    /// through crate::contain, so a symlink out of the snapshot, a FIFO or a file over the
    /// size limit is refused.
    pub fn read_in(
        root: Option<&std::path::Path>,
        path: &std::path::Path,
        mut visit: impl FnMut(&[u8]),
    ) -> Result<Cdb, String> {
        use std::io::{BufReader, Read};
        let (f, meta) = crate::contain::open_regular(root, path, crate::source::MAX_FILE_BYTES)
            .map_err(|e| e.into_io().to_string())?;
        let size = meta.len();
        let size = usize::try_from(size).map_err(|e| e.to_string())?;
        let mut r = BufReader::with_capacity(256 * 1024, f);
        let mut header = vec![0u8; 2048.min(size)];
        r.read_exact(&mut header).map_err(|e| e.to_string())?;
        let records_end = check_header(&header, size)?;
        let mut off = 2048usize;
        let mut key = Vec::new();
        let mut lens = [0u8; 8];
        let past = |off: usize| {
            format!("record at offset {off} runs past the record area: corrupt or truncated cdb")
        };
        while off < records_end {
            if r.read_exact(&mut lens).is_err() {
                return Err(past(off));
            }
            let klen = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
            let dlen = u32::from_le_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
            let end = off
                .checked_add(8)
                .and_then(|x| x.checked_add(klen))
                .and_then(|x| x.checked_add(dlen))
                .filter(|&e| e <= records_end)
                .ok_or_else(|| past(off))?;
            key.resize(klen, 0);
            if r.read_exact(&mut key).is_err() {
                return Err(past(off));
            }
            // Skip the data (within the buffer, mostly). A file cut short under us shows
            // up as a failed read of the next record, or is harmless at the end.
            r.seek_relative(dlen as i64).map_err(|e| e.to_string())?;
            visit(&key);
            off = end;
        }
        Ok(Cdb {
            data: std::sync::OnceLock::new(),
            path: Some(path.to_path_buf()),
            root: root.map(std::path::Path::to_path_buf),
            size,
            piecemeal: Default::default(),
            file: Default::default(),
            records_end,
        })
    }

    /// The file's bytes, read on first use. A file that vanished or shrank since it was
    /// checked reads as less (every access is bounds-checked): lookups then find nothing.
    fn data(&self) -> &[u8] {
        self.data.get_or_init(|| {
            self.path
                .as_ref()
                .and_then(|p| {
                    crate::contain::read(self.root.as_deref(), p, crate::source::MAX_FILE_BYTES)
                        .ok()
                })
                .unwrap_or_default()
        })
    }

    fn record_at(&self, off: usize) -> Option<(Record<'_>, usize)> {
        let data = self.data();
        let klen = u32_at(data, off)? as usize;
        let dlen = u32_at(data, off + 4)? as usize;
        let kstart = off + 8;
        let dstart = kstart.checked_add(klen)?;
        let end = dstart.checked_add(dlen)?;
        if end > self.records_end {
            return None;
        }
        Some((
            Record {
                key: data.get(kstart..dstart)?,
                data: data.get(dstart..end)?,
            },
            end,
        ))
    }

    /// All records in file order (duplicates included; the first of a key is the live one).
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        let mut off = 2048;
        std::iter::from_fn(move || {
            if off >= self.records_end {
                return None;
            }
            let (r, next) = self.record_at(off)?;
            off = next;
            Some(r)
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records().count()
    }

    pub fn is_empty(&self) -> bool {
        self.records_end <= 2048
    }

    /// The first record with `key`, found through the hash tables the way cdb_find does.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let pos = self.find(key)?;
        self.record_at(pos).map(|(r, _)| r.data)
    }

    /// Where the lookup of `key` starts: (hash, table position, slots, first slot).
    fn start(&self, key: &[u8]) -> Option<(u32, usize, usize, usize)> {
        let h = hash(key);
        let t = (h & 255) as usize;
        let data = self.data();
        let pos = u32_at(data, t * 8)? as usize;
        let slots = u32_at(data, t * 8 + 4)? as usize;
        if slots == 0 {
            return None;
        }
        Some((h, pos, slots, ((h >> 8) as usize) % slots))
    }

    /// Offset of the first record with `key`.
    ///
    /// While the file has not been read whole, the first `PIECEMEAL` lookups read only the
    /// slots and records they visit (a few positioned reads each): a cross-check that needs
    /// a handful of lookups does not pull a 50 MB file into memory. Past that, the file is
    /// read once and lookups run from memory.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        if self.piecemeal_allowed(1) {
            return self.find_piecemeal(key);
        }
        let (h, pos, slots, first) = self.start(key)?;
        self.probe(key, h, pos, slots, first)
    }

    /// Whether `n` more lookups may be made by positioned reads (and count them).
    fn piecemeal_allowed(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.data.get().is_none()
            && self.path.is_some()
            && self.piecemeal.fetch_add(n, Ordering::Relaxed) + n <= PIECEMEAL
    }

    /// Read `buf.len()` bytes at `off` from the file.
    fn read_at(&self, off: usize, buf: &mut [u8]) -> Option<()> {
        use std::os::unix::fs::FileExt;
        let f = self
            .file
            .get_or_init(|| {
                let p = self.path.as_ref()?;
                let limit = crate::source::MAX_FILE_BYTES;
                crate::contain::open_regular(self.root.as_deref(), p, limit)
                    .ok()
                    .map(|(f, _)| f)
            })
            .as_ref()?;
        f.read_exact_at(buf, off as u64).ok()
    }

    fn u32_pair_at(&self, off: usize) -> Option<(u32, u32)> {
        let mut b = [0u8; 8];
        self.read_at(off, &mut b)?;
        Some((
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        ))
    }

    /// `start` + `probe` + `record_at` by positioned reads: the same walk, the same answer.
    fn find_piecemeal(&self, key: &[u8]) -> Option<usize> {
        let h = hash(key);
        let (pos, slots) = self.u32_pair_at(((h & 255) as usize) * 8)?;
        let (pos, slots) = (pos as usize, slots as usize);
        if slots == 0 {
            return None;
        }
        let mut slot = ((h >> 8) as usize) % slots;
        let mut k = Vec::new();
        for _ in 0..slots {
            let (sh, rp) = self.u32_pair_at(pos + slot * 8)?;
            let rp = rp as usize;
            if rp == 0 {
                return None;
            }
            if sh == h {
                if let Some((klen, dlen)) = self.u32_pair_at(rp) {
                    let (klen, dlen) = (klen as usize, dlen as usize);
                    let fits = rp
                        .checked_add(8 + klen)
                        .and_then(|x| x.checked_add(dlen))
                        .is_some_and(|end| end <= self.records_end);
                    if fits && klen == key.len() {
                        k.resize(klen, 0);
                        if self.read_at(rp + 8, &mut k).is_some() && k == key {
                            return Some(rp);
                        }
                    }
                }
            }
            slot += 1;
            if slot == slots {
                slot = 0;
            }
        }
        None
    }

    fn probe(
        &self,
        key: &[u8],
        h: u32,
        pos: usize,
        slots: usize,
        mut slot: usize,
    ) -> Option<usize> {
        let data = self.data();
        for _ in 0..slots {
            let so = pos + slot * 8;
            let sh = u32_at(data, so)?;
            let rp = u32_at(data, so + 4)? as usize;
            if rp == 0 {
                return None;
            }
            if sh == h {
                if let Some((r, _)) = self.record_at(rp) {
                    if r.key == key {
                        return Some(rp);
                    }
                }
            }
            slot += 1;
            if slot == slots {
                slot = 0;
            }
        }
        None
    }

    /// `find` for many keys at once. The lookups of a batch touch their hash slots and
    /// records in separate passes, so the CPU overlaps the cache misses of independent keys
    /// instead of waiting for each in turn (a million lookups in a 50 MB file are almost all
    /// misses). Same answers as `find`.
    pub fn find_batch(&self, keys: &[&[u8]], out: &mut Vec<Option<usize>>) {
        const B: usize = 32;
        if keys.is_empty() {
            return; // nothing to look up: do not read the file for it
        }
        if self.piecemeal_allowed(keys.len()) {
            out.extend(keys.iter().map(|k| self.find_piecemeal(k)));
            return;
        }
        let data = self.data();
        for chunk in keys.chunks(B) {
            let mut st = [(0u32, 0usize, 0usize, 0usize); B];
            let mut ok = [false; B];
            let mut first = [(0u32, 0usize); B];
            for (i, k) in chunk.iter().enumerate() {
                if let Some(x) = self.start(k) {
                    st[i] = x;
                    ok[i] = true;
                }
            }
            // Pass 1: the first slot of each key (independent loads).
            for i in 0..chunk.len() {
                if ok[i] {
                    let (_, pos, _, slot) = st[i];
                    let so = pos + slot * 8;
                    first[i] = (
                        u32_at(data, so).unwrap_or(0),
                        u32_at(data, so + 4).unwrap_or(0) as usize,
                    );
                }
            }
            // Pass 2: the key length of each candidate record (independent loads).
            let mut warm = 0u32;
            for i in 0..chunk.len() {
                if ok[i] && first[i].0 == st[i].0 && first[i].1 != 0 {
                    warm ^= u32_at(data, first[i].1).unwrap_or(0);
                }
            }
            std::hint::black_box(warm);
            // Pass 3: the full lookups, now mostly from cache.
            for (i, k) in chunk.iter().enumerate() {
                out.push(if ok[i] {
                    let (h, pos, slots, slot) = st[i];
                    self.probe(k, h, pos, slots, slot)
                } else {
                    None
                });
            }
        }
    }

    /// Records with their offsets, in file order.
    pub fn records_at(&self) -> impl Iterator<Item = (usize, Record<'_>)> + '_ {
        let mut off = 2048;
        std::iter::from_fn(move || {
            if off >= self.records_end {
                return None;
            }
            let at = off;
            let (r, next) = self.record_at(off)?;
            off = next;
            Some((at, r))
        })
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Write a cdb (used by tests and the benchmark generator to build inputs without the
/// external tools; the oracle tests compare its reading against files made by the real ones).
pub fn build(records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let mut entries: Vec<(u32, u32)> = Vec::with_capacity(records.len());
    for (k, d) in records {
        entries.push((hash(k), out.len() as u32));
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(d);
    }
    let mut buckets: Vec<Vec<(u32, u32)>> = vec![Vec::new(); 256];
    for e in entries {
        buckets[(e.0 & 255) as usize].push(e);
    }
    let mut header = Vec::with_capacity(2048);
    for b in &buckets {
        let slots = b.len() * 2;
        let pos = out.len() as u32;
        header.extend_from_slice(&pos.to_le_bytes());
        header.extend_from_slice(&(slots as u32).to_le_bytes());
        let mut table = vec![(0u32, 0u32); slots];
        for &(h, p) in b {
            let mut s = ((h >> 8) as usize) % slots;
            while table[s].1 != 0 {
                s = (s + 1) % slots;
            }
            table[s] = (h, p);
        }
        for (h, p) in table {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
        }
    }
    out[..2048].copy_from_slice(&header);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let recs: Vec<(&[u8], &[u8])> = vec![
            (b"127.", b"+RELAYCLIENT=\0"),
            (b"", b""),
            (b"a", b"D\0"),
            (b"a", b"second"),
        ];
        let c = Cdb::parse(build(&recs)).unwrap();
        assert_eq!(c.get(b"127."), Some(&b"+RELAYCLIENT=\0"[..]));
        assert_eq!(c.get(b""), Some(&b""[..]));
        assert_eq!(c.get(b"a"), Some(&b"D\0"[..]), "first record of a key wins");
        assert_eq!(c.get(b"zz"), None);
        assert_eq!(c.len(), 4);
        let keys: Vec<&[u8]> = vec![b"a", b"zz", b"", b"127."];
        let mut got = Vec::new();
        c.find_batch(&keys, &mut got);
        let want: Vec<Option<usize>> = keys.iter().map(|k| c.find(k)).collect();
        assert_eq!(got, want);
        assert!(got[1].is_none() && got[0].is_some());
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        assert!(Cdb::parse(vec![0; 10]).is_err());
        let mut b = build(&[(b"k", b"v")]);
        b.truncate(b.len() - 3);
        assert!(Cdb::parse(b).is_err());
        let mut b = build(&[(b"key", b"value")]);
        b[2048] = 0xff; // klen huge
        assert!(Cdb::parse(b).is_err());
    }

    #[test]
    fn streaming_read_agrees_with_parse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.cdb");
        let good = build(&[
            (b"a.example", b""),
            (b"b.example", b"data"),
            (b"a.example", b""),
        ]);
        let mut cases = vec![good.clone(), vec![0; 10], Vec::new()];
        let mut cut = good.clone();
        cut.truncate(cut.len() - 3);
        cases.push(cut);
        let mut huge = good.clone();
        huge[2048] = 0xff;
        cases.push(huge);
        let mut short_rec = good.clone();
        // first table starts inside the records: the last record runs past the area
        short_rec[0..4].copy_from_slice(&2060u32.to_le_bytes());
        cases.push(short_rec);
        for bytes in cases {
            std::fs::write(&p, &bytes).unwrap();
            let mut keys = Vec::new();
            let streamed = Cdb::read_with(&p, |k| keys.push(k.to_vec()));
            let parsed = Cdb::parse(bytes.clone());
            assert_eq!(
                streamed.is_ok(),
                parsed.is_ok(),
                "{:?}",
                parsed.as_ref().err()
            );
            if let (Ok(s), Ok(m)) = (&streamed, &parsed) {
                let want: Vec<Vec<u8>> = m.records().map(|r| r.key.to_vec()).collect();
                assert_eq!(keys, want);
                for k in [&b"a.example"[..], b"b.example", b"zz", b""] {
                    assert_eq!(s.find(k), m.find(k), "piecemeal {k:?}");
                }
                let mut got = Vec::new();
                s.find_batch(&[b"b.example", b"nope"], &mut got);
                assert_eq!(got, vec![m.find(b"b.example"), None]);
                assert!(s.data.get().is_none(), "lookups so far read pieces only");
                assert_eq!(s.get(b"b.example"), Some(&b"data"[..]), "lazy load");
                assert_eq!(s.len(), m.len());
                assert_eq!(s.size(), m.size());
            }
            if let (Err(a), Err(b)) = (streamed, parsed) {
                assert_eq!(a, b);
            }
        }
    }
}
