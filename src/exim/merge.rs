//! Collapsing the branches of a `depends` decision (issue #16 item 6): branches that end in
//! the same answer and differ only in one undecidable condition merge into one without it
//! (`A and X` plus `A and not X` is just `A`), and a branch implied by a shorter one with the
//! same answer goes. What stays are the distinct ways to each answer, which is what an admin
//! reads; the set of answers and the conditions they rest on do not change.

/// The conditions of one way to an answer: (condition, assumed value), in ACL order.
pub type Conditions = Vec<(String, bool)>;

/// Above this many branches the pairwise merge (quadratic per round) is not attempted: the
/// list is shown as it is.
const MAX_BRANCHES: usize = 256;

/// Merges `ways` (answer, conditions) to a fixpoint. The answers keep their first order.
pub fn merge<K: PartialEq + Clone>(ways: Vec<(K, Conditions)>) -> Vec<(K, Conditions)> {
    let mut ways = dedup(ways);
    if ways.len() > MAX_BRANCHES {
        return ways;
    }
    while let Some((i, j, merged)) = find_pair(&ways) {
        ways[i].1 = merged;
        ways.remove(j);
        ways = dedup(ways);
    }
    drop_implied(ways)
}

/// The first pair with the same answer whose conditions name the same things and differ in
/// exactly one value, with their merged conditions.
fn find_pair<K: PartialEq>(ways: &[(K, Conditions)]) -> Option<(usize, usize, Conditions)> {
    for i in 0..ways.len() {
        for j in i + 1..ways.len() {
            if ways[i].0 != ways[j].0 || ways[i].1.len() != ways[j].1.len() {
                continue;
            }
            let (a, b) = (&ways[i].1, &ways[j].1);
            let mut differs = None;
            let mut ok = true;
            for (k, (ca, va)) in a.iter().enumerate() {
                match b.iter().find(|(cb, _)| cb == ca) {
                    Some((_, vb)) if vb == va => {}
                    Some(_) if differs.is_none() => differs = Some(k),
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if let (true, Some(k)) = (ok, differs) {
                let mut merged = a.clone();
                merged.remove(k);
                return Some((i, j, merged));
            }
        }
    }
    None
}

/// A way whose conditions include all of another's with the same answer adds nothing.
fn drop_implied<K: PartialEq>(ways: Vec<(K, Conditions)>) -> Vec<(K, Conditions)> {
    let implied = |i: usize| {
        ways.iter().enumerate().any(|(j, (k, c))| {
            j != i
                && *k == ways[i].0
                && c.len() < ways[i].1.len()
                && c.iter().all(|x| ways[i].1.contains(x))
        })
    };
    let keep: Vec<bool> = (0..ways.len()).map(|i| !implied(i)).collect();
    ways.into_iter()
        .zip(keep)
        .filter_map(|(w, k)| k.then_some(w))
        .collect()
}

fn dedup<K: PartialEq>(ways: Vec<(K, Conditions)>) -> Vec<(K, Conditions)> {
    let mut out: Vec<(K, Conditions)> = Vec::with_capacity(ways.len());
    for w in ways {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &[(&str, bool)]) -> Conditions {
        v.iter().map(|(n, b)| (n.to_string(), *b)).collect()
    }

    #[test]
    fn a_condition_that_does_not_change_the_answer_goes() {
        // accept if A and B; accept if A and not B and C; accept if A and not B and not C;
        // reject if not A  ->  accept if A; reject if not A.
        let ways = vec![
            ("accept", c(&[("A", true), ("B", true)])),
            ("accept", c(&[("A", true), ("B", false), ("C", true)])),
            ("accept", c(&[("A", true), ("B", false), ("C", false)])),
            ("reject", c(&[("A", false)])),
        ];
        assert_eq!(
            merge(ways),
            vec![
                ("accept", c(&[("A", true)])),
                ("reject", c(&[("A", false)]))
            ]
        );
    }

    #[test]
    fn different_answers_never_merge() {
        let ways = vec![
            ("accept", c(&[("A", true)])),
            ("reject", c(&[("A", false)])),
        ];
        assert_eq!(merge(ways.clone()), ways);
    }

    #[test]
    fn the_helo_case_keeps_both_answers_and_their_condition() {
        // accept if L and H; reject (HELO) if L and not H; accept if not L and H;
        // reject if not L and not H  ->  accept if H; reject if not H.
        let ways = vec![
            ("accept", c(&[("L", true), ("H", true)])),
            ("helo", c(&[("L", true), ("H", false)])),
            ("accept", c(&[("L", false), ("H", true)])),
            ("helo", c(&[("L", false), ("H", false)])),
        ];
        assert_eq!(
            merge(ways),
            vec![("accept", c(&[("H", true)])), ("helo", c(&[("H", false)]))]
        );
    }
}
