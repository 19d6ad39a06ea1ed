//! Grouping events of a whole log by cause, in bounded memory.

use std::collections::HashMap;

use serde::Serialize;

use super::event::{Auth, Cause, Event, Side, Source};
use super::stamp::Stamp;

/// Distinct values kept per counter. When twice as many are seen, the least frequent half is
/// dropped (counts of values seen again later restart): the heavy hitters admins look for
/// survive, memory stays bounded, and the output says when counts are approximate.
const KEEP: usize = 1000;

/// FNV-1a: short keys (addresses), no attacker-controlled flooding worth SipHash's cost in a
/// batch tool whose memory is bounded anyway.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes a step (FNV's multiply, then a rotation to mix high bits down): keys
        // are addresses and IPs hashed several times per event.
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            self.0 = (self.0 ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
        for b in words.remainder() {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Debug, Default)]
pub struct TopK {
    counts: HashMap<String, u64, std::hash::BuildHasherDefault<Fnv>>,
    pub pruned: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

impl TopK {
    pub fn add(&mut self, key: &str) {
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
            return;
        }
        if self.counts.len() >= 2 * KEEP {
            let mut v: Vec<u64> = self.counts.values().copied().collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            let cut = v.get(KEEP).copied().unwrap_or(0);
            let mut kept = 0;
            self.counts.retain(|_, c| {
                // Keep strictly larger ones, then ties until KEEP.
                if *c > cut || (*c == cut && kept < KEEP) {
                    kept += 1;
                    true
                } else {
                    false
                }
            });
            self.pruned = true;
        }
        self.counts.insert(key.to_string(), 1);
    }

    pub fn top(&self, n: usize) -> Vec<Count> {
        let mut v: Vec<Count> = self
            .counts
            .iter()
            .map(|(k, c)| Count {
                value: k.clone(),
                count: *c,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(n);
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub cause: Cause,
    pub source: Source,
    pub side: Side,
    pub auth: Auth,
}

#[derive(Debug)]
pub struct Group {
    pub key: Key,
    pub count: u64,
    pub first: Option<(Stamp, String)>,
    pub last: Option<(Stamp, String)>,
    pub clients: TopK,
    pub recipients: TopK,
    pub users: TopK,
    pub programs: TopK,
    /// The first event of the group, for the simulation and as an example.
    pub example: Event,
}

#[derive(Debug, Default)]
pub struct Aggregate {
    /// A handful of keys, looked up once per event: FNV rather than SipHash. Output order
    /// comes from `sorted`, never from the map.
    pub groups: HashMap<Key, Group, std::hash::BuildHasherDefault<Fnv>>,
    label: String,
}

/// The client as groups list it, written into a reused buffer (no allocation per event).
fn client_label(e: &Event, buf: &mut String) -> bool {
    use std::fmt::Write as _;
    buf.clear();
    match (&e.client_ip, &e.client_name, &e.remote_host) {
        (Some(ip), Some(n), _) if n != "unknown" && n != ip => {
            let _ = write!(buf, "{ip} ({n})");
        }
        (Some(ip), _, _) => buf.push_str(ip),
        (None, _, Some(r)) => buf.push_str(r),
        (None, Some(n), None) => buf.push_str(n),
        _ => return false,
    }
    true
}

impl Aggregate {
    /// One event; `input` names the log it came from, for the group's example (events of
    /// whole-log summaries do not carry it; a refusal held until its session's end in the
    /// next rotated file is attributed to that file).
    pub fn add(&mut self, e: Event, input: &str) {
        let key = Key {
            cause: e.cause,
            source: e.source,
            side: e.side,
            auth: e.auth,
        };
        let stamp = e.stamp.map(|s| (s, String::new()));
        let has_label = client_label(&e, &mut self.label);
        let g = self.groups.entry(key).or_insert_with(|| Group {
            key,
            count: 0,
            first: None,
            last: None,
            clients: TopK::default(),
            recipients: TopK::default(),
            users: TopK::default(),
            programs: TopK::default(),
            example: {
                let mut x = e.clone();
                if x.input.is_empty() {
                    x.input = input.to_string();
                }
                x
            },
        });
        g.count += 1;
        if let Some(s) = stamp {
            if g.first.as_ref().is_none_or(|f| s.0.cmp_to(&f.0).is_lt()) {
                g.first = Some(s.clone());
            }
            if g.last.as_ref().is_none_or(|l| s.0.cmp_to(&l.0).is_ge()) {
                g.last = Some(s);
            }
        }
        if has_label {
            g.clients.add(&self.label);
        }
        if let Some(r) = &e.recipient {
            g.recipients.add(r);
        }
        if let Some(u) = &e.sasl_user {
            g.users.add(u);
        }
        if let Some(p) = &e.program {
            g.programs.add(p);
        }
    }

    /// Groups, most frequent first (relay-related before the rest at equal counts).
    pub fn sorted(&self) -> Vec<&Group> {
        let mut v: Vec<&Group> = self.groups.values().collect();
        v.sort_by(|a, b| {
            b.key
                .cause
                .is_relay_related()
                .cmp(&a.key.cause.is_relay_related())
                .then(b.count.cmp(&a.count))
                .then(a.key.cmp(&b.key))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_keeps_heavy_hitters_in_bounded_memory() {
        let mut t = TopK::default();
        for i in 0..50_000u32 {
            t.add(&format!("rare{i}"));
            if i % 10 == 0 {
                t.add("heavy");
            }
        }
        assert!(t.counts.len() <= 2 * KEEP);
        let top = t.top(1);
        assert_eq!(top[0].value, "heavy");
        assert!(t.pruned);
    }
}
