//! The fleet report as one self-contained HTML file: no external assets, so it works offline
//! and as a mail attachment. It holds a chart of findings per category (inline SVG), a host
//! table sortable by any column (a little inline script; `#sort=COLUMN` or
//! `#sort=COLUMN-asc` in the address opens it sorted), the changes since the baseline, and
//! each host's findings with file:line and the help text.

use std::fmt::Write as _;

use super::worst_label;
use crate::finding::Severity;
use crate::fleet::{Change, Fleet, HostResult};

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d1d1f;max-width:80em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{padding:.25em .6em;text-align:left;border-bottom:1px solid #eee}
th{cursor:pointer;background:#f5f5f7;user-select:none}th[aria-sort]::after{content:' \\2195';color:#999}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.error{color:#b00020;font-weight:600}.warning{color:#a15c00;font-weight:600}.info{color:#555}.clean{color:#2e7d32}
.relay{background:#b00020;color:#fff;border-radius:3px;padding:0 .4em;font-size:.85em}
details{margin:.4em 0}summary{cursor:pointer}li{margin:.3em 0}.help{color:#555;font-size:.92em}
code{background:#f5f5f7;padding:0 .2em}
";

/// Sorting: numbers by value, text by name; the current order is kept in aria-sort.
const SCRIPT: &str = r#"
(function(){
  var table=document.getElementById('hosts');
  function sortBy(col,dir){
    var ths=table.tHead.rows[0].cells, idx=-1;
    for(var i=0;i<ths.length;i++){ if(ths[i].dataset.col===col){idx=i;} ths[i].setAttribute('aria-sort','none'); }
    if(idx<0){return;}
    var num=ths[idx].dataset.type==='num';
    var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[idx].dataset.v, y=b.cells[idx].dataset.v;
      var c=num?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);
      return dir==='asc'?c:-c;
    });
    rows.forEach(function(r){body.appendChild(r);});
    ths[idx].setAttribute('aria-sort',dir==='asc'?'ascending':'descending');
  }
  var ths=table.tHead.rows[0].cells;
  for(var i=0;i<ths.length;i++){
    ths[i].addEventListener('click',function(){
      var now=this.getAttribute('aria-sort');
      sortBy(this.dataset.col, now==='descending'?'asc':'desc');
    });
  }
  // #sort=COLUMN[-asc]: open the page sorted, through the same click a reader makes.
  var m=/#sort=([a-z_]+)(?:-(asc|desc))?/.exec(location.hash);
  if(m){
    var th=table.querySelector('th[data-col="'+m[1]+'"]');
    if(th){ th.click(); if(m[2]==='asc'){ th.click(); } }
  }
  document.documentElement.setAttribute('data-ready','1');
})();
"#;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An anchor id for a host name (ids must not contain spaces).
fn anchor(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("host-{id}")
}

pub fn render(f: &Fleet) -> String {
    let mut out = String::with_capacity(4096 + f.hosts.len() * 1024);
    let relays = f.hosts.iter().filter(|h| h.open_relay()).count();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>relaydoctor fleet report</title><style>{STYLE}</style></head><body>\n\
         <h1>relaydoctor fleet report</h1>\n<p id=\"summary\" data-hosts=\"{}\" data-error=\"{}\" \
         data-warning=\"{}\" data-info=\"{}\" data-open-relays=\"{relays}\">{} hosts from {} result \
         files: <span class=\"error\">{} errors</span>, <span class=\"warning\">{} warnings</span>, \
         {} info; {relays} open relay{}.</p>\n",
        f.hosts.len(),
        f.total(Severity::Error),
        f.total(Severity::Warning),
        f.total(Severity::Info),
        f.hosts.len(),
        f.files,
        f.total(Severity::Error),
        f.total(Severity::Warning),
        f.total(Severity::Info),
        if relays == 1 { "" } else { "s" },
    );
    chart(&mut out, f);
    host_table(&mut out, f);
    if let Some(c) = &f.changes {
        let _ = write!(
            out,
            "<h2>Since {}</h2>\n<p id=\"changes\" data-new=\"{}\" data-fixed=\"{}\">{} new, {} fixed.</p>\n",
            esc(&c.baseline),
            c.new.len(),
            c.fixed.len(),
            c.new.len(),
            c.fixed.len()
        );
        changes(&mut out, "New", &c.new);
        changes(&mut out, "Fixed", &c.fixed);
    }
    out.push_str("<h2>Hosts in detail</h2>\n");
    for h in &f.hosts {
        host_details(&mut out, h);
    }
    for s in &f.skipped {
        let _ = writeln!(out, "<p class=\"info\">skipped: {}</p>", esc(s));
    }
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

/// Horizontal stacked bars, one per category: errors, warnings, info.
fn chart(out: &mut String, f: &Fleet) {
    out.push_str("<h2>Findings per category</h2>\n");
    let max = f
        .categories
        .values()
        .map(|n| n.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, row_h) = (170.0, 520.0, 22.0);
    let height = row_h * f.categories.len().max(1) as f64 + 4.0;
    let _ = writeln!(
        out,
        "<svg id=\"chart\" role=\"img\" aria-label=\"findings per category\" width=\"{}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        label_w + bar_w + 80.0
    );
    for (row, (cat, n)) in f.categories.iter().enumerate() {
        let y = row as f64 * row_h + 2.0;
        let _ = writeln!(out, "<text x=\"0\" y=\"{}\">{}</text>", y + 14.0, esc(cat));
        let mut x = label_w;
        for (k, color) in [(0, "#b00020"), (1, "#e69500"), (2, "#9e9e9e")] {
            let w = bar_w * n[k] as f64 / max as f64;
            if n[k] > 0 {
                let _ = writeln!(
                    out,
                    "<rect class=\"bar\" data-category=\"{}\" data-severity=\"{}\" data-count=\"{}\" \
                     x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"/>",
                    esc(cat),
                    ["error", "warning", "info"][k],
                    n[k],
                    row_h - 6.0
                );
            }
            x += w;
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 6.0,
            y + 14.0,
            n.iter().sum::<usize>()
        );
    }
    out.push_str("</svg>\n");
}

fn host_table(out: &mut String, f: &Fleet) {
    out.push_str(
        "<h2>Hosts</h2>\n<p class=\"info\">Click a column to sort.</p>\n<table id=\"hosts\"><thead><tr>\
         <th data-col=\"host\">Host</th><th data-col=\"worst\" data-type=\"num\">Worst</th>\
         <th data-col=\"errors\" data-type=\"num\">Errors</th>\
         <th data-col=\"warnings\" data-type=\"num\">Warnings</th>\
         <th data-col=\"info\" data-type=\"num\">Info</th>\
         <th data-col=\"open_relay\" data-type=\"num\">Open relay</th></tr></thead><tbody>\n",
    );
    for h in &f.hosts {
        let worst = h.worst();
        // Rank values: open relays sort above every other error.
        let rank = match worst {
            Some(Severity::Error) if h.open_relay() => 4,
            Some(Severity::Error) => 3,
            Some(Severity::Warning) => 2,
            Some(Severity::Info) => 1,
            None => 0,
        };
        let label = worst_label(worst);
        let _ = writeln!(
            out,
            "<tr><td data-v=\"{n}\"><a href=\"#{a}\">{n}</a></td><td data-v=\"{rank}\" class=\"{label}\">{label}</td>\
             <td class=\"n\" data-v=\"{e}\">{e}</td><td class=\"n\" data-v=\"{w}\">{w}</td>\
             <td class=\"n\" data-v=\"{i}\">{i}</td><td data-v=\"{r}\">{rs}</td></tr>",
            n = esc(&h.name),
            a = anchor(&h.name),
            e = h.count(Severity::Error),
            w = h.count(Severity::Warning),
            i = h.count(Severity::Info),
            r = u8::from(h.open_relay()),
            rs = if h.open_relay() {
                "<span class=\"relay\">open relay</span>"
            } else {
                ""
            },
        );
    }
    out.push_str("</tbody></table>\n");
}

fn changes(out: &mut String, title: &str, list: &[Change]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h3>{title}</h3>\n<ul>");
    for c in list {
        let _ = writeln!(
            out,
            "<li><b>{}</b> <span class=\"{s}\">{s}</span> {} <code>{}:{}</code> {}</li>",
            esc(&c.host),
            esc(&c.code),
            esc(&c.file),
            c.line,
            esc(&c.message),
            s = c.severity.as_str()
        );
    }
    out.push_str("</ul>\n");
}

fn host_details(out: &mut String, h: &HostResult) {
    let label = worst_label(h.worst());
    let _ = writeln!(
        out,
        "<details id=\"{}\"{}><summary><b>{}</b> <span class=\"{label}\">{label}</span> \
         ({} findings; from {})</summary>\n<ul>",
        anchor(&h.name),
        if h.open_relay() { " open" } else { "" },
        esc(&h.name),
        h.findings.len(),
        esc(&h.sources.join(", ")),
    );
    for why in &h.failed {
        let _ = writeln!(
            out,
            "<li><span class=\"error\">could not check</span> {}</li>",
            esc(why)
        );
    }
    let mut items: Vec<_> = h.findings.iter().collect();
    items.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(&b.code)));
    for f in items {
        let at = if f.file.is_empty() {
            String::new()
        } else {
            format!(" <code>{}:{}</code>", esc(&f.file), f.line)
        };
        let _ = write!(
            out,
            "<li><span class=\"{s}\">{s}</span> <b>{}</b>{at}{}: {}",
            esc(&f.code),
            f.service
                .as_deref()
                .map(|s| format!(" [{}]", esc(s)))
                .unwrap_or_default(),
            esc(&f.message),
            s = f.severity.as_str()
        );
        if let Some(help) = &f.help {
            let _ = write!(out, "<div class=\"help\">{}</div>", esc(help));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul></details>\n");
}
