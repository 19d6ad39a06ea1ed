//! A small reader for D. J. Bernstein's constant database format (cdb), as written by
//! ucspi-tcp's `tcprules`, qmail's `qmail-newmrh` and tinycdb's `cdb -c`.
//!
//! Format (cr.yp.to/cdb/cdb.txt): a 2048-byte header of 256 (position, slots) pairs of
//! little-endian u32; then records `klen dlen key data`; then the 256 hash tables of
//! (hash, record position) slots. Hash: `h = 5381; h = ((h << 5) + h) ^ c`. A lookup
//! returns the first record with the key, which is what tcpserver and qmail-smtpd use.
//!
//! Every offset is checked: a truncated or corrupt file gives an error, never a panic.

/// A cdb file held in memory.
#[derive(Debug, Clone)]
pub struct Cdb {
    data: Vec<u8>,
    /// End of the record area (start of the first hash table).
    records_end: usize,
}

/// One record: key and data, borrowed from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub data: &'a [u8],
}

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

impl Cdb {
    /// Check the header and the record area; errors say what is wrong in plain words.
    pub fn parse(data: Vec<u8>) -> Result<Cdb, String> {
        if data.len() < 2048 {
            return Err(format!(
                "{} bytes is shorter than the 2048-byte cdb header (truncated or not a cdb file)",
                data.len()
            ));
        }
        let mut records_end = data.len();
        for i in 0..256 {
            let pos = u32_at(&data, i * 8).unwrap_or(0) as usize;
            let slots = u32_at(&data, i * 8 + 4).unwrap_or(0) as usize;
            if pos < 2048 || pos > data.len() || slots.saturating_mul(8) > data.len() - pos {
                return Err(format!(
                    "hash table {i} points outside the file (position {pos}, {slots} slots): corrupt or truncated cdb"
                ));
            }
            records_end = records_end.min(pos);
        }
        let cdb = Cdb { data, records_end };
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
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        Cdb::parse(data)
    }

    fn record_at(&self, off: usize) -> Option<(Record<'_>, usize)> {
        let klen = u32_at(&self.data, off)? as usize;
        let dlen = u32_at(&self.data, off + 4)? as usize;
        let kstart = off + 8;
        let dstart = kstart.checked_add(klen)?;
        let end = dstart.checked_add(dlen)?;
        if end > self.records_end {
            return None;
        }
        Some((
            Record {
                key: self.data.get(kstart..dstart)?,
                data: self.data.get(dstart..end)?,
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
        let pos = u32_at(&self.data, t * 8)? as usize;
        let slots = u32_at(&self.data, t * 8 + 4)? as usize;
        if slots == 0 {
            return None;
        }
        Some((h, pos, slots, ((h >> 8) as usize) % slots))
    }

    /// Offset of the first record with `key`.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        let (h, pos, slots, first) = self.start(key)?;
        self.probe(key, h, pos, slots, first)
    }

    fn probe(
        &self,
        key: &[u8],
        h: u32,
        pos: usize,
        slots: usize,
        mut slot: usize,
    ) -> Option<usize> {
        for _ in 0..slots {
            let so = pos + slot * 8;
            let sh = u32_at(&self.data, so)?;
            let rp = u32_at(&self.data, so + 4)? as usize;
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
                        u32_at(&self.data, so).unwrap_or(0),
                        u32_at(&self.data, so + 4).unwrap_or(0) as usize,
                    );
                }
            }
            // Pass 2: the key length of each candidate record (independent loads).
            let mut warm = 0u32;
            for i in 0..chunk.len() {
                if ok[i] && first[i].0 == st[i].0 && first[i].1 != 0 {
                    warm ^= u32_at(&self.data, first[i].1).unwrap_or(0);
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
        self.data.len()
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
}
