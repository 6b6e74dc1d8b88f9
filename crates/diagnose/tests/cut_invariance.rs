//! A diagnosis does not depend on how the reader cut the input: the bundled incident read in
//! one range per file and cut into many small ranges and blocks gives the same JSON, evidence
//! file:line included. This pins every line number the collector keeps to
//! `Sink::shift_lines` (a kept line that the shift missed would point into the wrong place).

use meshdoctor_diagnose::{RuleSet, diagnose};
use meshdoctor_input::{DiscoverOptions, discover};
use meshdoctor_logs::RunOptions;
use std::path::PathBuf;

#[test]
fn same_diagnosis_however_the_files_are_cut() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/sniffing-timeout");
    let (inputs, errors) = discover(&[dir], &DiscoverOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let rules = RuleSet::builtin().expect("built-in rules load");
    let json = |options: &RunOptions| {
        serde_json::to_string_pretty(&diagnose(&inputs, options, &rules)).expect("serialises")
    };
    let whole = json(&RunOptions::default());
    assert!(
        whole.contains("\"line\""),
        "the diagnosis quotes evidence lines"
    );
    for use_mmap in [true, false] {
        let cut = json(&RunOptions {
            range_bytes: 4096,
            block_bytes: 512,
            use_mmap,
            ..RunOptions::default()
        });
        assert_eq!(whole, cut, "cut into 4 KiB ranges, mapped: {use_mmap}");
    }
}
