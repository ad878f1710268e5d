//! Container IDs and Docker-style names (`adjective_surname`).

use rand::Rng;
use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "agile",
    "amazing",
    "bold",
    "brave",
    "bright",
    "busy",
    "calm",
    "careful",
    "charming",
    "cheerful",
    "clever",
    "cool",
    "curious",
    "daring",
    "dazzling",
    "determined",
    "eager",
    "elated",
    "elegant",
    "epic",
    "fervent",
    "festive",
    "fond",
    "friendly",
    "gallant",
    "gentle",
    "goofy",
    "gracious",
    "happy",
    "hardcore",
    "hopeful",
    "humble",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "lucid",
    "lucky",
    "modest",
    "mystifying",
    "nice",
    "nifty",
    "nimble",
    "optimistic",
    "patient",
    "peaceful",
    "pensive",
    "practical",
    "quirky",
    "quiet",
    "relaxed",
    "reverent",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "vivid",
    "wizardly",
    "wonderful",
    "youthful",
    "zealous",
    "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "archimedes",
    "babbage",
    "banach",
    "bell",
    "bohr",
    "boole",
    "brahmagupta",
    "cantor",
    "carson",
    "chandrasekhar",
    "curie",
    "darwin",
    "dijkstra",
    "dirac",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "germain",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "kowalevski",
    "lamarr",
    "leakey",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "mirzakhani",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "poincare",
    "ramanujan",
    "ritchie",
    "sagan",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wiles",
    "wozniak",
    "wright",
    "yalow",
    "zhukovsky",
];

/// A new random 64-hex container ID.
pub(super) fn new_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let id = hex::encode(bytes);
    // Docker avoids all-digit short IDs, which would parse as numbers in some tools.
    if id[..12].bytes().all(|b| b.is_ascii_digit()) {
        new_id()
    } else {
        id
    }
}

/// A random name; after `retry` collisions a digit is appended, as Docker does.
pub(super) fn random_name(retry: usize) -> String {
    let mut rng = rand::rng();
    let name = format!(
        "{}_{}",
        ADJECTIVES.choose(&mut rng).expect("list is not empty"),
        SURNAMES.choose(&mut rng).expect("list is not empty")
    );
    if retry > 0 {
        format!("{name}{}", rng.random_range(0..10))
    } else {
        name
    }
}

/// Docker's rule for `--name`: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`.
pub(super) fn valid_name(name: &str) -> bool {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_have_docker_shapes() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(random_name(0).contains('_'));
        assert!(valid_name("web-1") && valid_name("/a.b"));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a b"));
    }
}
