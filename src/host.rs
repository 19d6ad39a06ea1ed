//! Which server a result is about: the `host` object in every JSON output, so results of many
//! servers can be merged (`relaydoctor report`).

use std::path::Path;

use crate::context::Root;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Host {
    pub name: String,
    /// Where the name came from: `--host-name`, `etc/hostname` of the snapshot, the
    /// snapshot's directory name, or the system host name.
    pub source: String,
}

/// `--host-name` wins; a snapshot is named by its etc/hostname, else by its directory; a live
/// system by its host name.
pub fn identify(flag: Option<&str>, root: &Root) -> Host {
    if let Some(n) = flag.map(str::trim).filter(|n| !n.is_empty()) {
        return Host {
            name: n.to_string(),
            source: "--host-name".into(),
        };
    }
    let first_line = |p: &Path| -> Option<String> {
        // Never open a FIFO or device (a hostile snapshot's etc/hostname would block).
        let (f, meta) = root.open(p, 4096).ok()?;
        let text =
            String::from_utf8(crate::contain::read_capped(f, meta.len(), 4096).ok()?).ok()?;
        let l = text.lines().next()?.trim().to_string();
        (!l.is_empty()).then_some(l)
    };
    if root.is_snapshot() {
        if let Some(h) = first_line(&root.resolve(Path::new("/etc/hostname"))) {
            return Host {
                name: h,
                source: "etc/hostname of the snapshot".into(),
            };
        }
        let dir = root.resolve(Path::new("/"));
        let name = dir
            .canonicalize()
            .unwrap_or(dir)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into());
        return Host {
            name,
            source: "the snapshot's directory name (no etc/hostname)".into(),
        };
    }
    let name = first_line(Path::new("/proc/sys/kernel/hostname"))
        .or_else(|| first_line(Path::new("/etc/hostname")))
        .unwrap_or_else(|| "localhost".into());
    Host {
        name,
        source: "the system host name".into(),
    }
}

/// Add `"host": {...}` as the first member of a JSON object text (the outputs are pretty
/// JSON objects rendered by the engines; they need not know which host they run for).
/// Text that is not an object is returned unchanged.
pub fn insert_into_json(text: &str, host: &Host) -> String {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix('{') else {
        return text.to_string();
    };
    let value = serde_json::to_string(host).unwrap_or_else(|_| "{}".into());
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    let mut out = String::with_capacity(text.len() + value.len() + 16);
    out.push_str("{\n  \"host\": ");
    out.push_str(&value);
    out.push_str(sep);
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_goes_first_and_the_json_stays_valid() {
        let h = Host {
            name: "mx\"1".into(),
            source: "--host-name".into(),
        };
        for text in ["{\n  \"a\": 1\n}\n", "{}", "  {\"x\": [1]}"] {
            let out = insert_into_json(text, &h);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["host"]["name"], "mx\"1", "{out}");
        }
        assert_eq!(insert_into_json("[1]", &h), "[1]");
    }

    #[test]
    fn snapshot_names() {
        let t = tempfile::tempdir().unwrap();
        let snap = t.path().join("mx7");
        std::fs::create_dir_all(snap.join("etc")).unwrap();
        let root = Root::snapshot(&snap);
        assert_eq!(identify(None, &root).name, "mx7");
        std::fs::write(snap.join("etc/hostname"), "mail.example.net\n").unwrap();
        assert_eq!(identify(None, &root).name, "mail.example.net");
        assert_eq!(identify(Some("x1"), &root).name, "x1");
    }
}
