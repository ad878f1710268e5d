//! A deterministic fuzz pass: random Dockerfile-ish text, words and ignore patterns
//! must give results or errors, never panics. (The daemon parses strangers' files.)

use std::collections::BTreeMap;

use berth_build::Dockerfile;
use berth_build::ignore::IgnoreMatcher;
use berth_build::lex::ShellLex;
use berth_build::plan::BuildPlan;
use berth_build::scope::{BuildArgs, GlobalScope, StageScope};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "WORKDIR ",
    "USER ",
    "STOPSIGNAL ",
    "AS ",
    "x",
    "--from=",
    "--mount=",
    "--interval=",
    "=",
    " ",
    "\t",
    "\n",
    "\\\n",
    "`",
    "\\",
    "\"",
    "'",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    "?",
    "#",
    "%",
    "/",
    "*",
    "**",
    "[",
    "]",
    "!",
    "<<",
    "<<-",
    "EOF",
    "\nEOF\n",
    "[\"a\"]",
    "[1]",
    "# escape=`\n",
    "# syntax=x\n",
    "é",
    "日本",
    "\r\n",
    "0",
    "1",
    "-",
    "..",
    ".",
];

fn random_text(rng: &mut Rng, max: u64) -> String {
    let n = rng.next() % max;
    (0..n).map(|_| rng.pick(PIECES)).collect()
}

#[test]
fn random_input_never_panics() {
    // BERTH_FUZZ_ITERATIONS / BERTH_FUZZ_SEED run longer or elsewhere by hand.
    let iterations: u64 = std::env::var("BERTH_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed.max(1));
    let args = BuildArgs::native(BTreeMap::from([("A".to_string(), "1".to_string())]));
    for _ in 0..iterations {
        let text = random_text(&mut rng, 40);
        if let Ok(df) = Dockerfile::parse(&text) {
            if let Ok(global) = GlobalScope::new(&df, &args) {
                let _ = BuildPlan::new(&df, &global, None);
                for stage in &df.stages {
                    let mut scope = StageScope::new(&global, &["PATH=/bin".to_string()]);
                    for step in &stage.steps {
                        let _ = scope.apply(step);
                    }
                }
            }
        }
        let word = random_text(&mut rng, 12);
        let vars = BTreeMap::from([("x".to_string(), "a b".to_string())]);
        let _ = ShellLex::new('\\').process_words(&word, &vars);
        let _ = ShellLex::new('`').process_word(&word, &vars);
        let pattern = random_text(&mut rng, 6);
        if let Ok(m) = IgnoreMatcher::from_dockerignore(&pattern) {
            let _ = m.is_excluded(&random_text(&mut rng, 6));
            let _ = m.can_skip_dir("x");
        }
    }
}
