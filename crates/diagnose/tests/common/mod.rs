//! What the tests that run on `testdata/scenarios/` share. The report crate's tests include
//! this file too (`#[path]`), so both crates read cases the same way.
#![allow(dead_code)] // each test binary uses its own part

use meshdoctor_diagnose::RuleSet;
use meshdoctor_input::{DiscoverOptions, InputFile, discover};
use std::path::{Path, PathBuf};

/// `testdata/scenarios/<rel>` (the folder itself for `""`).
pub fn scenario(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/scenarios")
        .join(rel)
}

/// The inputs of a case: everything `discover` finds in its folder but the expectation and
/// the notes.
pub fn case_inputs(dir: &Path) -> Vec<InputFile> {
    let (inputs, _errors) = discover(&[dir.to_path_buf()], &DiscoverOptions::default());
    inputs
        .into_iter()
        .filter(|i| !i.display.ends_with(".md") && !i.display.ends_with("expect.json"))
        .collect()
}

/// Only the two seed-cause rules, so snapshots do not move when rules are added.
pub fn seed_rules() -> RuleSet {
    let mut rules = RuleSet::builtin().expect("rules");
    rules
        .rules
        .retain(|r| r.id == "protocol-sniffing-timeout" || r.id == "mtls-strict-plaintext-client");
    rules
}
