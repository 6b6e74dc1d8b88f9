//! Re-reads the few evidence lines a report shows, so the report quotes each line exactly
//! as written (the sink keeps only compact facts, not text).
//!
//! A plain file is mapped and each wanted line is found by counting newlines from the
//! nearest line mark the reading pipeline left (one per range it read); gzip files are
//! streamed from their start; stdin cannot be re-read, so those lines get a placeholder.
//! Must not be used for anything but a handful of lines: it runs after the parallel read,
//! alone.

use crate::journey::truncate;
use crate::signals::EvidenceLine;
use meshdoctor_input::{Access, InputFile, MappedFile, open_stream};
use meshdoctor_logs::FileCoverage;
use meshdoctor_logs::coverage::LineMark;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};

/// Longest quoted line.
pub const MAX_TEXT: usize = 400;

/// Fill `text` of each line from its input (matched by display name). `coverage` is the
/// reading pipeline's, for its line marks; without it files are read from their start.
pub fn fill_lines(
    inputs: &[InputFile],
    coverage: &[FileCoverage],
    lines: &mut [&mut EvidenceLine],
) {
    let mut wanted: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for l in lines.iter() {
        if l.text.is_empty() {
            wanted.entry(l.file.as_str()).or_default().insert(l.line);
        }
    }
    // Files are independent: read them on every core.
    let per_file: Vec<(&str, Vec<(u64, String)>)> = wanted
        .par_iter()
        .filter_map(|(&file, nums)| {
            let input = inputs.iter().find(|i| i.display == file)?;
            let marks = coverage
                .iter()
                .find(|c| c.display == file)
                .map_or(&[][..], |c| c.line_marks.as_slice());
            let found = match input.access {
                Access::Stdin => return None,
                Access::Plain { .. } => {
                    read_mapped(input, marks, nums).or_else(|| read_streamed(input, nums))
                }
                Access::Gzip => read_streamed(input, nums),
            };
            Some((file, found?))
        })
        .collect();
    let mut texts: BTreeMap<(String, u64), String> = BTreeMap::new();
    for (file, found) in per_file {
        for (n, text) in found {
            texts.insert((file.to_string(), n), text);
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

/// The quoted form of one line's bytes.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    truncate(text.trim_end_matches(['\n', '\r']), MAX_TEXT)
}

/// The wanted lines of a plain file, found in its mapping from the nearest mark. `None` when
/// the file cannot be mapped (then it is streamed).
fn read_mapped(
    input: &InputFile,
    marks: &[LineMark],
    nums: &BTreeSet<u64>,
) -> Option<Vec<(u64, String)>> {
    let file = std::fs::File::open(&input.path).ok()?;
    let map = MappedFile::open(&file)?;
    let bytes = map.bytes();
    let mut found = Vec::new();
    // Where counting stands: line `line` starts at byte `at`.
    let (mut line, mut at) = (1u64, 0usize);
    for &want in nums {
        // Jump ahead to the last mark at or before the wanted line, if it is ahead.
        let nearest = marks.partition_point(|m| m.line <= want);
        if let Some(mark) = nearest.checked_sub(1).and_then(|i| marks.get(i))
            && mark.line > line
            && let Ok(offset) = usize::try_from(mark.offset)
            && offset <= bytes.len()
        {
            (line, at) = (mark.line, offset);
        }
        if want > line {
            let skip = usize::try_from(want - line - 1).unwrap_or(usize::MAX);
            match nth_newline(&bytes[at..], skip) {
                Some(nl) => (line, at) = (want, at + nl + 1),
                // The file ends before the wanted line.
                None => break,
            }
        }
        if want == line && at < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            found.push((want, quote(&bytes[at..end])));
        }
    }
    Some(found)
}

/// Bytes counted at once while skipping whole blocks of lines.
const COUNT_BLOCK: usize = 64 * 1024;

/// Offset of the newline that ends the `n`-th line (0-based) of `bytes`. Whole blocks are
/// counted with a vector count, which is many times faster than visiting newline after
/// newline (a mark can be megabytes before the wanted line).
fn nth_newline(bytes: &[u8], n: usize) -> Option<usize> {
    nth_newline_by_blocks(bytes, n, COUNT_BLOCK)
}

fn nth_newline_by_blocks(bytes: &[u8], mut n: usize, block_len: usize) -> Option<usize> {
    let mut base = 0;
    for block in bytes.chunks(block_len.max(1)) {
        let count = memchr::memchr_iter(b'\n', block).count();
        if count > n {
            return memchr::memchr_iter(b'\n', block).nth(n).map(|i| base + i);
        }
        n -= count;
        base += block.len();
    }
    None
}

/// The wanted lines of any readable input, counted from its start (gzip files, and plain
/// files that cannot be mapped).
fn read_streamed(input: &InputFile, nums: &BTreeSet<u64>) -> Option<Vec<(u64, String)>> {
    let stream = open_stream(input).ok()?;
    let &max = nums.iter().next_back()?;
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut found = Vec::new();
    let mut line = Vec::new();
    let mut n = 0u64;
    while n < max {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        n += 1;
        if nums.contains(&n) {
            found.push((n, quote(&line)));
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshdoctor_input::{DiscoverOptions, discover};
    use proptest::prelude::*;

    proptest! {
        /// Counting in blocks finds the newline a walk over every newline finds, wherever
        /// the block borders fall.
        #[test]
        fn block_counting_finds_the_nth_newline(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x')], 0..300),
            n in 0usize..120,
            block_len in 1usize..40,
        ) {
            prop_assert_eq!(
                nth_newline_by_blocks(&bytes, n, block_len),
                memchr::memchr_iter(b'\n', &bytes).nth(n)
            );
        }
    }

    #[test]
    fn lines_are_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\r\ntwo\n\nfour\nlast without newline").unwrap();
        let (inputs, _) = discover(std::slice::from_ref(&path), &DiscoverOptions::default());
        let display = inputs[0].display.clone();
        let mut want: Vec<EvidenceLine> = [1, 3, 4, 5, 9]
            .into_iter()
            .map(|line| EvidenceLine {
                file: display.clone(),
                line,
                text: String::new(),
            })
            .collect();
        let mut refs: Vec<&mut EvidenceLine> = want.iter_mut().collect();
        fill_lines(&inputs, &[], &mut refs);
        let texts: Vec<&str> = want.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "one",
                "",
                "four",
                "last without newline",
                "(line could not be re-read from the input)"
            ]
        );
    }

    #[test]
    fn long_lines_far_into_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        // 1001-byte lines, 2 MB: lines counted across many pages of the mapping.
        let line = |n: u64| format!("{n:06}{}", "x".repeat(994));
        let body: String = (1..=2000).map(|n| line(n) + "\n").collect();
        std::fs::write(&path, body).unwrap();
        let (inputs, _) = discover(std::slice::from_ref(&path), &DiscoverOptions::default());
        let display = inputs[0].display.clone();
        let nums = [1047, 1048, 1049, 2000];
        let mut want: Vec<EvidenceLine> = nums
            .into_iter()
            .map(|n| EvidenceLine {
                file: display.clone(),
                line: n,
                text: String::new(),
            })
            .collect();
        let mut refs: Vec<&mut EvidenceLine> = want.iter_mut().collect();
        fill_lines(&inputs, &[], &mut refs);
        for (l, n) in want.iter().zip(nums) {
            assert_eq!(l.text, truncate(&line(n), MAX_TEXT));
        }
    }

    /// Plain files read with the pipeline's marks, without them, and the same text gzipped
    /// quote the same lines, and those are the lines of the text.
    #[test]
    fn marks_and_streams_quote_the_same_lines() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=3000u64)
            .map(|n| match n % 7 {
                0 => String::new(),
                3 => format!("line {n} with a windows ending\r"),
                _ => format!("line {n} {}", "y".repeat(usize::try_from(n % 300).unwrap())),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("b.log.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let (inputs, _) = discover(&[plain, gz], &DiscoverOptions::default());
        let options = meshdoctor_logs::RunOptions {
            range_bytes: 4096,
            ..meshdoctor_logs::RunOptions::default()
        };
        let coverage = meshdoctor_logs::run(&inputs, &options, || meshdoctor_logs::NoSink).coverage;
        assert!(
            coverage[0].line_marks.len() > 10,
            "{:?}",
            coverage[0].line_marks
        );
        let nums = [1u64, 2, 7, 500, 1001, 1002, 2047, 2999, 3000, 3001];
        let expected: Vec<String> = nums
            .iter()
            .map(
                |&n| match text.split('\n').nth(usize::try_from(n - 1).unwrap()) {
                    Some(line) => truncate(line.trim_end_matches('\r'), MAX_TEXT),
                    None => "(line could not be re-read from the input)".to_string(),
                },
            )
            .collect();
        for (input, cov) in [(0, &coverage[..]), (0, &[][..]), (1, &coverage[..])] {
            let mut want: Vec<EvidenceLine> = nums
                .iter()
                .map(|&line| EvidenceLine {
                    file: inputs[input].display.clone(),
                    line,
                    text: String::new(),
                })
                .collect();
            let mut refs: Vec<&mut EvidenceLine> = want.iter_mut().collect();
            fill_lines(&inputs, cov, &mut refs);
            let texts: Vec<String> = want.into_iter().map(|l| l.text).collect();
            assert_eq!(texts, expected, "input {input}, {} marks", cov.len());
        }
    }
}
