//! Golden-file tests of the Dockerfile parser.
//!
//! `golden/<case>.Dockerfile` parses to `golden/<case>.json` (the serialized
//! [`berth_build::Dockerfile`]); `golden/negative/<case>.Dockerfile` fails with the
//! message in `golden/negative/<case>.err`; `golden/<case>.plan.json` is what stages two
//! and three make of it with fixed build args (`TAG=1.0`) and platforms (build
//! linux/amd64, target linux/arm64): the stage graph, the waves, and every needed
//! stage's instructions after substitution, each stage starting from `PATH=/usr/bin` or
//! the environment its base stage ended with. Run with `BERTH_UPDATE_GOLDEN=1` to rewrite
//! the positive expectations after a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use berth_build::Dockerfile;
use berth_build::plan::{BuildPlan, Source};
use berth_build::scope::{BuildArgs, GlobalScope, Platform, StageScope};
use serde_json::{Value, json};

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
        let outputs = [
            (
                case.with_extension("json"),
                serde_json::to_value(&parsed).unwrap(),
            ),
            (case.with_extension("plan.json"), plan_json(&parsed)),
        ];
        for (expected_path, value) in outputs {
            let got = serde_json::to_string_pretty(&value).unwrap() + "\n";
            if update {
                std::fs::write(&expected_path, &got).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            if got != expected {
                failures.push(format!("{}:\n{got}", expected_path.display()));
            }
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

fn plan_json(df: &Dockerfile) -> Value {
    let platform = |arch: &str| Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: String::new(),
    };
    let args = BuildArgs {
        values: BTreeMap::from([("TAG".to_string(), "1.0".to_string())]),
        build_platform: platform("amd64"),
        target_platform: platform("arm64"),
    };
    let global = match GlobalScope::new(df, &args) {
        Ok(g) => g,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let plan = match BuildPlan::new(df, &global, None) {
        Ok(p) => p,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut end_env: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut stages = Vec::new();
    for i in plan.order() {
        let planned = &plan.stages[i];
        let base_env = match planned.base {
            Source::Stage(b) => end_env[&b].clone(),
            _ => vec!["PATH=/usr/bin".to_string()],
        };
        let mut scope = StageScope::new(&global, &base_env);
        let steps: Vec<Value> = df.stages[i]
            .steps
            .iter()
            .map(|step| match scope.apply(step) {
                Ok(ins) => serde_json::to_value(ins).unwrap(),
                Err(e) => json!({ "error": e.to_string() }),
            })
            .collect();
        end_env.insert(i, scope.env());
        stages.push(json!({
            "index": i,
            "name": planned.name,
            "image": planned.from.image,
            "platform": planned.from.platform,
            "base": format!("{:?}", planned.base),
            "deps": planned.deps,
            "images": planned.images,
            "steps": steps,
            "env": scope.env(),
            "run_env": scope.run_env(),
        }));
    }
    json!({
        "meta_args": global.meta_args(),
        "target": plan.target,
        "waves": plan.waves,
        "stages": stages,
    })
}
