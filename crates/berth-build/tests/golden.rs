//! Golden-file tests of the Dockerfile parser.
//!
//! `golden/<case>.Dockerfile` parses to `golden/<case>.json` (the serialized
//! [`berth_build::Dockerfile`]); `golden/negative/<case>.Dockerfile` fails with the
//! message in `golden/negative/<case>.err`. Run with `BERTH_UPDATE_GOLDEN=1` to rewrite
//! the positive expectations after a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use berth_build::Dockerfile;

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", dir.display());
    v
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_dockerfiles_parse_to_expected_instructions() {
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in cases(&golden_dir()) {
        let text = std::fs::read_to_string(&case).unwrap();
        let parsed = Dockerfile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let got = serde_json::to_string_pretty(&parsed).unwrap() + "\n";
        let expected_path = case.with_extension("json");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if got != expected {
            failures.push(format!("{}:\n{got}", case.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn negative_dockerfiles_fail_with_dockers_message() {
    let mut failures = Vec::new();
    for case in cases(&golden_dir().join("negative")) {
        let text = std::fs::read_to_string(&case).unwrap();
        let expected_path = case.with_extension("err");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        match Dockerfile::parse(&text) {
            Ok(_) => failures.push(format!("{}: parsed but should fail", case.display())),
            Err(e) if e.to_string() != expected.trim_end() => {
                failures.push(format!("{}: got {e:?}\n  {e}", case.display()))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
