//! `notarius policy lint DIR` on good and bad folders: exit codes and `file:line: field`
//! output (DESIGN §6, §7).
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

use std::path::Path;
use std::process::{Command, Output};

fn lint(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notarius")).args(["policy", "lint"]).arg(dir).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn shipped_policies_lint_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let output = lint(&dir);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.starts_with("ok: 0 rules from 1 files (digest sha256:"), "{stdout}");
    // Content trust on, default deny and no rules: said on stderr, stdout stays one line.
    assert!(text(&output.stderr).contains("every image is denied"));
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn each_example_lints_clean_on_its_own() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        let output = lint(dir.path());
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{}: {}", path.display(), text(&output.stderr));
        assert!(stdout.starts_with("ok: ") && stdout.contains(" from 1 files (digest sha256:"), "{stdout}");
    }
}

#[test]
fn good_folder_counts_rules_and_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00-settings.toml"), "content_trust = true\ndefault = \"deny\"\n").unwrap();
    std::fs::write(
        dir.path().join("prod.toml"),
        "[[rule]]\nname = \"prod\"\nrepositories = [\"registry.example.com/prod/**\"]\nsigned_by_teams = [\"ci\"]\n\n\
         [[rule]]\nname = \"base\"\nrepositories = [\"alpine\"]\n",
    )
    .unwrap();
    // Not loaded: a subfolder, even a broken one.
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::write(dir.path().join("examples/broken.toml"), "[[rule]\n").unwrap();
    let output = lint(dir.path());
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(stdout.starts_with("ok: 2 rules from 2 files (digest sha256:"), "{stdout}");
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

#[test]
fn bad_folder_prints_each_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "content_trust = true\n\n[[rule]]\nname = \"prod\"\nrepositories = [\"Registry.example.com/**\"]\noperations = [\"deploy\"]\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "content_trust = false\ncolour = \"blue\"\n").unwrap();
    std::fs::write(dir.path().join("c.toml"), "default = \"deny\"\n[[rule]\n").unwrap();
    let output = lint(dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let prefixes: Vec<String> =
        lines.iter().take(5).map(|l| l.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": ")).collect();
    assert_eq!(
        prefixes,
        [
            "a.toml:5: rule[0].repositories[0]",
            "a.toml:6: rule[0].operations[0]",
            "b.toml:1: content_trust",
            "b.toml:2: colour",
            "c.toml:2: syntax",
        ],
        "{stderr}"
    );
    assert!(lines[2].contains("a.toml:1"), "{stderr}");
    assert!(lines[5].starts_with("5 errors"), "{stderr}");
}

#[test]
fn duplicate_rule_name_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "[[rule]]\nname = \"prod\"\nrepositories = [\"nginx\"]\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "\n[[rule]]\nname = \"prod\"\nrepositories = [\"alpine\"]\n").unwrap();
    let output = lint(dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("b.toml:3: rule[0].name: rule name \"prod\" is already used at a.toml:2"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let missing = tempfile::tempdir().unwrap().path().join("nope");
    let output = lint(&missing);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no such folder"));

    let file = tempfile::NamedTempFile::new().unwrap();
    assert_eq!(lint(file.path()).status.code(), Some(2));

    let no_dir = Command::new(env!("CARGO_BIN_EXE_notarius")).args(["policy", "lint"]).output().unwrap();
    assert_eq!(no_dir.status.code(), Some(2));
    let unknown = Command::new(env!("CARGO_BIN_EXE_notarius")).args(["policy", "frobnicate"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
