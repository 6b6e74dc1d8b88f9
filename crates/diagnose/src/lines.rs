//! Re-reads the few evidence lines a report shows, so the report quotes each line exactly
//! as written (the sink keeps only compact facts, not text).
//!
//! One sequential pass per file over the wanted line numbers; stdin cannot be re-read, so
//! those lines get a placeholder. Must not be used for anything but a handful of lines.

use crate::journey::truncate;
use crate::signals::EvidenceLine;
use meshdoctor_input::{Access, InputFile, open_stream};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};

/// Longest quoted line.
pub const MAX_TEXT: usize = 400;

/// Fill `text` of each line from its input (matched by display name).
pub fn fill_lines(inputs: &[InputFile], lines: &mut [&mut EvidenceLine]) {
    let mut wanted: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for l in lines.iter() {
        if l.text.is_empty() {
            wanted.entry(l.file.as_str()).or_default().insert(l.line);
        }
    }
    let mut texts: BTreeMap<(String, u64), String> = BTreeMap::new();
    for (file, nums) in wanted {
        let Some(input) = inputs.iter().find(|i| i.display == file) else {
            continue;
        };
        if input.access == Access::Stdin {
            continue;
        }
        let Ok(stream) = open_stream(input) else {
            continue;
        };
        let Some(&max) = nums.iter().next_back() else {
            continue;
        };
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        let mut n = 0u64;
        while n < max {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            n += 1;
            if nums.contains(&n) {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                texts.insert((file.to_string(), n), truncate(text, MAX_TEXT));
            }
        }
    }
    for l in lines.iter_mut() {
        if l.text.is_empty() {
            l.text = texts
                .get(&(l.file.clone(), l.line))
                .cloned()
                .unwrap_or_else(|| "(line could not be re-read from the input)".to_string());
        }
    }
}
