//! A unified diff built from the edits themselves, in time linear in the text and the
//! number of edits (for files with many fixes; `fix::diff` uses `similar` below that).
//!
//! The lines an edit touches are replaced as a whole ("-" old lines, "+" new lines); edits on
//! the same or adjacent lines form one change, and changes closer than twice the context
//! share a hunk, in the format of GNU diff -u (and of `similar`, whose output the smaller
//! diffs keep).

use crate::finding::Edit;

const CONTEXT: usize = 3;

/// A run of old lines `[from, to)` replaced by `new` (complete lines).
struct Change {
    from: usize,
    to: usize,
    new: String,
}

/// Unified diff of `text` with `edits` (sorted, non-overlapping) applied.
pub fn unified(text: &str, edits: &[Edit], name: &str) -> String {
    let starts = line_starts(text);
    let changes = changes(text, &starts, edits);
    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let lines = starts.len() - 1;
    let line = |i: usize| &text[starts[i]..starts[i + 1]];
    let mut delta: isize = 0;
    let mut i = 0;
    while i < changes.len() {
        // Changes whose gap is at most 2 * CONTEXT unchanged lines share a hunk.
        let mut j = i + 1;
        while j < changes.len() && changes[j].from <= changes[j - 1].to + 2 * CONTEXT {
            j += 1;
        }
        let first = changes[i].from.saturating_sub(CONTEXT);
        let last = (changes[j - 1].to + CONTEXT).min(lines);
        let mut body = String::new();
        let (mut old_len, mut new_len) = (0usize, 0usize);
        let mut at = first;
        for c in &changes[i..j] {
            for k in at..c.from {
                push_line(&mut body, ' ', line(k));
            }
            for k in c.from..c.to {
                push_line(&mut body, '-', line(k));
            }
            let mut n = 0;
            for l in c.new.split_inclusive('\n') {
                push_line(&mut body, '+', l);
                n += 1;
            }
            old_len += c.from - at + c.to - c.from;
            new_len += c.from - at + n;
            at = c.to;
        }
        for k in at..last {
            push_line(&mut body, ' ', line(k));
        }
        old_len += last - at;
        new_len += last - at;
        let new_first = (first as isize + delta) as usize;
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(first, old_len),
            range(new_first, new_len)
        ));
        out.push_str(&body);
        for c in &changes[i..j] {
            delta += c.new.split_inclusive('\n').count() as isize - (c.to - c.from) as isize;
        }
        i = j;
    }
    out
}

/// GNU diff's range: `start,len` (1-based), `start` alone for one line, the line before for
/// an empty range.
fn range(start: usize, len: usize) -> String {
    match len {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        _ => format!("{},{len}", start + 1),
    }
}

fn push_line(out: &mut String, mark: char, l: &str) {
    out.push(mark);
    out.push_str(l);
    if !l.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

/// Byte offsets where each line starts, and the text's length at the end.
fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
    if *v.last().unwrap_or(&0) != text.len() {
        v.push(text.len());
    }
    v
}

/// The line holding byte `pos`.
fn line_of(starts: &[usize], pos: usize) -> usize {
    starts.partition_point(|&s| s <= pos).saturating_sub(1)
}

/// Edits grouped into line changes: edits on the same or adjacent lines merge (as a
/// line diff shows adjacent changed lines as one block).
fn changes(text: &str, starts: &[usize], edits: &[Edit]) -> Vec<Change> {
    let lines = starts.len() - 1;
    let mut out: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for e in edits {
        let from = line_of(starts, e.start).min(lines);
        let whole_lines_inserted =
            e.start == e.end && starts.get(from) == Some(&e.start) && e.replacement.ends_with('\n');
        let to = if e.end > e.start {
            line_of(starts, e.end - 1) + 1
        } else if whole_lines_inserted {
            from
        } else {
            (from + 1).min(lines)
        };
        match out.last_mut() {
            Some(last) if from <= last.1 => {
                last.1 = last.1.max(to);
                last.2.push(e);
            }
            _ => out.push((from, to, vec![e])),
        }
    }
    out.into_iter()
        .map(|(from, to, es)| {
            let (a, b) = (starts[from], starts[to]);
            let mut new = String::new();
            let mut pos = a;
            for e in es {
                let s = e.start.clamp(pos, b);
                new.push_str(&text[pos..s]);
                new.push_str(&e.replacement);
                pos = e.end.clamp(s, b);
            }
            new.push_str(&text[pos..b]);
            Change { from, to, new }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: usize, end: usize, r: &str) -> Edit {
        Edit {
            real_file: "m".into(),
            file: "m".into(),
            start,
            end,
            replacement: r.into(),
        }
    }

    /// The linear diff agrees with similar's where similar's minimal diff is the same
    /// replacement of whole lines.
    #[test]
    fn same_as_similar_for_line_replacements() {
        let text: String = (0..40).map(|i| format!("p{i} = v{i}\n")).collect();
        let starts = line_starts(&text);
        let mut edits = Vec::new();
        for i in [0usize, 2, 3, 20, 39] {
            let s = starts[i];
            edits.push(edit(s, s + 2 + i.to_string().len(), &format!("q{i}")));
        }
        // Deletion of a whole line and an insertion of one.
        edits.push(edit(starts[10], starts[11], ""));
        edits.push(edit(starts[30], starts[30], "new = 1\n"));
        edits.sort_by_key(|e| (e.start, e.end));
        let new = crate::fix::apply_edits(&text, &edits);
        let want = similar::TextDiff::from_lines(text.as_str(), new.as_str())
            .unified_diff()
            .context_radius(3)
            .header("a/m", "b/m")
            .to_string();
        assert_eq!(unified(&text, &edits, "m"), want);
    }

    #[test]
    fn no_newline_at_end() {
        let text = "a = 1\nb = 2";
        let edits = [edit(6, 7, "c")];
        let new = crate::fix::apply_edits(text, &edits);
        let want = similar::TextDiff::from_lines(text, new.as_str())
            .unified_diff()
            .context_radius(3)
            .header("a/m", "b/m")
            .to_string();
        assert_eq!(unified(text, &edits, "m"), want);
    }
}
