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
        // Lines are counted with a SIMD newline search over big buffers; only wanted lines
        // are copied (the same lines `read_until` would return, trailing `\n` included).
        let mut reader = BufReader::with_capacity(1 << 20, stream);
        let mut wanted_iter = nums.iter().copied().peekable();
        let mut line: Vec<u8> = Vec::new();
        let mut started = false;
        let mut n = 0u64;
        while n < max {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if buf.is_empty() {
                // A last line without a newline still counts.
                if started {
                    n += 1;
                    while wanted_iter.next_if(|w| *w < n).is_some() {}
                    if wanted_iter.peek() == Some(&n) {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        texts.insert((file.to_string(), n), truncate(text, MAX_TEXT));
                    }
                }
                break;
            }
            let mut from = 0;
            let mut done = false;
            for nl in memchr::memchr_iter(b'\n', buf) {
                n += 1;
                while wanted_iter.next_if(|w| *w < n).is_some() {}
                if wanted_iter.peek() == Some(&n) {
                    line.extend_from_slice(&buf[from..=nl]);
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    texts.insert((file.to_string(), n), truncate(text, MAX_TEXT));
                }
                line.clear();
                started = false;
                from = nl + 1;
                if n >= max {
                    done = true;
                    break;
                }
            }
            if done {
                break;
            }
            // The rest is the start of the next line: keep it only if that line is wanted.
            let rest = &buf[from..];
            if !rest.is_empty() {
                started = true;
                while wanted_iter.next_if(|w| *w <= n).is_some() {}
                if wanted_iter.peek() == Some(&(n + 1)) {
                    line.extend_from_slice(rest);
                }
            }
            let len = buf.len();
            reader.consume(len);
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

#[cfg(test)]
mod tests {
    use super::*;
    use meshdoctor_input::{DiscoverOptions, discover};

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
        fill_lines(&inputs, &mut refs);
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
    fn lines_across_read_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        // 1001-byte lines: the 1 MiB read buffer ends inside line 1048.
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
        fill_lines(&inputs, &mut refs);
        for (l, n) in want.iter().zip(nums) {
            assert_eq!(l.text, truncate(&line(n), MAX_TEXT));
        }
    }
}
