//! `--fix` machinery: atomic write, mode and owner kept, backup left, a file that changed
//! since it was read is refused, and bytes outside the edit are untouched.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use relaydoctor::context::{Context, Options, Root};
use relaydoctor::finding::{Applicability, Edit, Finding, Fix, Mta};
use relaydoctor::fix;

mod common;

fn finding_with_edit(
    file: &std::path::Path,
    shown: &str,
    start: usize,
    end: usize,
    rep: &str,
) -> Finding {
    Finding::new("RD003", Mta::Postfix, "test").fix(Fix {
        applicability: Applicability::Safe,
        description: "test edit".into(),
        edits: vec![Edit {
            real_file: file.to_path_buf(),
            file: shown.into(),
            start,
            end,
            replacement: rep.into(),
        }],
    })
}

#[test]
fn apply_keeps_mode_and_owner_and_leaves_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("etc/postfix")).unwrap();
    let main = root.join("etc/postfix/main.cf");
    let original = "a = 1\r\nmynetworks = 127.0.0.0/8 # office\r\nz = 2\r\n";
    fs::write(&main, original).unwrap();
    fs::set_permissions(&main, fs::Permissions::from_mode(0o640)).unwrap();
    // Give the file another owner when we can (as root), to prove it is kept.
    let (uid, gid) = (65534u32, 65534u32);
    let chowned = std::os::unix::fs::chown(&main, Some(uid), Some(gid)).is_ok();
    let before = fs::metadata(&main).unwrap();

    let ctx = Context::new(Root::snapshot(root), Options::default());
    let src = ctx.load(&main).unwrap();
    let start = src.text.find(" # office").unwrap();
    let f = finding_with_edit(&main, "etc/postfix/main.cf", start, start + 9, "");
    let plans = fix::plan(&[f], false);
    assert_eq!(plans.len(), 1);

    let diff = fix::diff(&ctx, &plans[0]).unwrap();
    assert!(
        diff.contains("-mynetworks = 127.0.0.0/8 # office"),
        "{diff}"
    );
    assert!(diff.contains("+mynetworks = 127.0.0.0/8\r"), "{diff}");

    let backup = fix::apply(&ctx, &plans[0]).unwrap();
    let after = fs::read_to_string(&main).unwrap();
    // CRLF line endings and every other byte are kept.
    assert_eq!(after, "a = 1\r\nmynetworks = 127.0.0.0/8\r\nz = 2\r\n");
    assert_eq!(fs::read_to_string(&backup).unwrap(), original);
    let meta = fs::metadata(&main).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.uid(), before.uid());
    assert_eq!(meta.gid(), before.gid());
    if chowned {
        assert_eq!(meta.uid(), uid);
        assert_eq!(fs::metadata(&backup).unwrap().uid(), uid);
    }
    assert_ne!(meta.ino(), before.ino(), "written via rename, not in place");
    // No temp files left behind.
    let leftovers: Vec<_> = fs::read_dir(root.join("etc/postfix"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".relaydoctor."))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn apply_refuses_a_file_that_changed_since_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.cf");
    fs::write(&main, "x = 1 # c\n").unwrap();
    let ctx = Context::new(Root::live(), Options::default());
    ctx.load(&main).unwrap();
    let f = finding_with_edit(&main, main.to_str().unwrap(), 5, 9, "");
    let plans = fix::plan(&[f], false);
    fs::write(&main, "x = 1 # c\ny = 2\n").unwrap();
    let err = fix::apply(&ctx, &plans[0]).unwrap_err();
    assert!(err.contains("changed since"), "{err}");
    assert_eq!(fs::read_to_string(&main).unwrap(), "x = 1 # c\ny = 2\n");
    assert!(!fix::backup_path(&main).exists());
}

#[test]
fn unsafe_fixes_are_not_planned_and_overlaps_are_dropped() {
    let p = std::path::Path::new("f");
    let mut unsafe_fix = finding_with_edit(p, "f", 0, 1, "x");
    unsafe_fix.fix.as_mut().unwrap().applicability = Applicability::Unsafe;
    assert!(fix::plan(&[unsafe_fix.clone()], false).is_empty());
    assert_eq!(fix::plan(&[unsafe_fix], true).len(), 1);
    let a = finding_with_edit(p, "f", 0, 5, "a");
    let b = finding_with_edit(p, "f", 3, 8, "b");
    let c = finding_with_edit(p, "f", 8, 9, "c");
    let plans = fix::plan(&[a, b, c], false);
    let starts: Vec<_> = plans[0].edits.iter().map(|e| e.start).collect();
    assert_eq!(starts, vec![0, 8]);
}

#[test]
fn apply_fixes_the_file_a_symlink_points_to_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("etc/postfix")).unwrap();
    fs::create_dir_all(root.join("srv/cfg")).unwrap();
    let real = root.join("srv/cfg/main.cf");
    fs::write(&real, "mynetworks = 127.0.0.0/8 # office\n").unwrap();
    let link = root.join("etc/postfix/main.cf");
    std::os::unix::fs::symlink("../../srv/cfg/main.cf", &link).unwrap();

    let ctx = Context::new(Root::snapshot(root), Options::default());
    let src = ctx.load(&link).unwrap();
    let start = src.text.find(" # office").unwrap();
    let f = finding_with_edit(&link, "etc/postfix/main.cf", start, start + 9, "");
    let plans = fix::plan(&[f], false);
    let backup = fix::apply(&ctx, &plans[0]).unwrap();

    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(&real).unwrap(),
        "mynetworks = 127.0.0.0/8\n"
    );
    assert_eq!(
        fs::read_to_string(&backup).unwrap(),
        "mynetworks = 127.0.0.0/8 # office\n"
    );
    assert_eq!(
        backup.parent(),
        fs::canonicalize(root.join("srv/cfg")).ok().as_deref()
    );
}

#[test]
fn an_absolute_symlink_in_a_snapshot_is_fixed_inside_the_snapshot() {
    // main.cf -> /srv/cfg/main.cf means the snapshot's srv/cfg/main.cf (chroot), never this
    // machine's /srv/cfg/main.cf.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("etc/postfix")).unwrap();
    fs::create_dir_all(root.join("srv/cfg")).unwrap();
    let real = root.join("srv/cfg/main.cf");
    fs::write(&real, "mynetworks = 127.0.0.0/8 # office\n").unwrap();
    let link = root.join("etc/postfix/main.cf");
    std::os::unix::fs::symlink("/srv/cfg/main.cf", &link).unwrap();

    let ctx = Context::new(Root::snapshot(root), Options::default());
    let src = ctx.load(&link).unwrap();
    let start = src.text.find(" # office").unwrap();
    let f = finding_with_edit(&link, "etc/postfix/main.cf", start, start + 9, "");
    let backup = fix::apply(&ctx, &fix::plan(&[f], false)[0]).unwrap();
    assert_eq!(
        fs::read_to_string(&real).unwrap(),
        "mynetworks = 127.0.0.0/8\n"
    );
    assert!(backup.starts_with(root), "{}", backup.display());
}

/// A snapshot with main.cf holding `text`, loaded, and the plan removing `# office`.
fn planned(
    text: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Context,
    Vec<fix::FilePlan>,
) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc/postfix")).unwrap();
    let main = dir.path().join("etc/postfix/main.cf");
    fs::write(&main, text).unwrap();
    let ctx = Context::new(Root::snapshot(dir.path()), Options::default());
    let src = ctx.load(&main).unwrap();
    let start = src.text.find(" # office").unwrap();
    let f = finding_with_edit(&main, "etc/postfix/main.cf", start, start + 9, "");
    let plans = fix::plan(&[f], false);
    (dir, main, ctx, plans)
}

#[test]
fn setuid_and_setgid_bits_survive() {
    let (_d, main, ctx, plans) = planned("mynetworks = 127.0.0.0/8 # office\n");
    fs::set_permissions(&main, fs::Permissions::from_mode(0o6750)).unwrap();
    fix::apply(&ctx, &plans[0]).unwrap();
    assert_eq!(fs::metadata(&main).unwrap().mode() & 0o7777, 0o6750);
}

#[test]
fn hard_links_are_written_in_place_and_stay_linked() {
    let (d, main, ctx, plans) = planned("mynetworks = 127.0.0.0/8 # office\n");
    let other = d.path().join("main.cf.link");
    fs::hard_link(&main, &other).unwrap();
    let note = fix::apply_note(&ctx, &plans[0]).unwrap();
    assert!(
        note.contains("in place") && note.contains("2 hard links"),
        "{note}"
    );
    assert_eq!(
        fs::read_to_string(&other).unwrap(),
        "mynetworks = 127.0.0.0/8\n"
    );
    assert_eq!(
        fs::metadata(&main).unwrap().ino(),
        fs::metadata(&other).unwrap().ino()
    );
}

#[test]
fn extended_attributes_are_copied() {
    let (_d, main, ctx, plans) = planned("mynetworks = 127.0.0.0/8 # office\n");
    if rustix::fs::setxattr(
        &main,
        "user.relaydoctor",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .is_err()
    {
        eprintln!("SKIP: this filesystem has no user xattrs");
        return;
    }
    fix::apply(&ctx, &plans[0]).unwrap();
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(&main, "user.relaydoctor", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"kept");
}

#[test]
fn backups_are_numbered_and_never_overwritten() {
    let (d, main, _ctx, _) = planned("a = 1 # office\n");
    for round in 0..3 {
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        let src = ctx.load(&main).unwrap();
        let f = finding_with_edit(&main, "etc/postfix/main.cf", 0, 1, "b");
        let _ = src;
        let backup = fix::apply(&ctx, &fix::plan(&[f], false)[0]).unwrap();
        let want = match round {
            0 => fix::backup_path(&main),
            n => std::path::PathBuf::from(format!("{}.{n}", fix::backup_path(&main).display())),
        };
        assert_eq!(backup, want);
    }
    // The first backup still holds the original.
    assert_eq!(
        fs::read_to_string(fix::backup_path(&main)).unwrap(),
        "a = 1 # office\n"
    );
}

#[test]
fn leftover_temp_files_are_reported_and_removed_by_fix() {
    let t = common::copy_tree(&common::repo("fixtures/rules/RD007/bad"));
    let temp = t.path().join("etc/postfix/.relaydoctor.x7Qk2p");
    assert!(temp.exists());
    let r = t.path().to_string_lossy().into_owned();
    let out = common::run_ok(&["lint", "--root", &r, "--fix"]);
    assert!(
        out.stderr.contains("removed the leftover temp file")
            || out.stdout.contains("removed the leftover temp file"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(!temp.exists());
    assert!(t.path().join("etc/postfix/main.cf").exists());
}

#[test]
fn concurrent_edits_are_never_lost() {
    // An editor that rewrites main.cf (read, append a line, write a temp file, rename: what
    // sed -i and most editors do) races repeated --fix rounds. Every line it added must be
    // in the final file.
    let (d, main, _ctx, _) = planned("mynetworks = 127.0.0.0/8 # office\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (m2, s2) = (main.clone(), stop.clone());
    let editor = std::thread::spawn(move || {
        let mut n = 0;
        while !s2.load(std::sync::atomic::Ordering::SeqCst) && n < 400 {
            let mut t = fs::read_to_string(&m2).unwrap();
            t.push_str(&format!("edit{n} = {n} # office\n"));
            let tmp = m2.with_extension("editor-tmp");
            fs::write(&tmp, t).unwrap();
            fs::rename(&tmp, &m2).unwrap();
            n += 1;
        }
        n
    });
    let mut fixed = 0;
    for _ in 0..200 {
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        let Ok(src) = ctx.load(&main) else { continue };
        let Some(start) = src.text.find(" # office") else {
            continue;
        };
        let f = finding_with_edit(&main, "etc/postfix/main.cf", start, start + 9, "");
        if fix::apply(&ctx, &fix::plan(&[f], false)[0]).is_ok() {
            fixed += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let edits = editor.join().unwrap();
    let last = fs::read_to_string(&main).unwrap();
    let lost: Vec<usize> = (0..edits)
        .filter(|n| !last.contains(&format!("edit{n} = {n}")))
        .collect();
    eprintln!("{edits} edits, {fixed} fixes applied, lost: {lost:?}");
    assert!(lost.is_empty(), "lost edits {lost:?}");
}
