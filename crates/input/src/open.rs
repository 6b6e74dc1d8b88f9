//! Reading bytes: whole streams (gzip, stdin) and ranges of regular files.

use crate::{Access, InputFile};
use std::io::Read;

/// A readable stream of an input's decompressed bytes.
pub type ByteSource = Box<dyn Read + Send>;

/// Open an input as a stream of its (decompressed) bytes. Gzip members are concatenated,
/// as `zcat` does, so rotated-and-joined archives read whole.
///
/// # Errors
/// When the file cannot be opened.
pub fn open_stream(input: &InputFile) -> std::io::Result<ByteSource> {
    Ok(match input.access {
        Access::Stdin => Box::new(std::io::stdin()),
        Access::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(&input.path)?),
        )),
        Access::Plain { .. } => Box::new(std::fs::File::open(&input.path)?),
    })
}

/// Fill `dst` with the bytes at `offset` of a regular file; returns how many were read
/// (fewer than `dst.len()` only at end of file). The caller owns and reuses `dst`, so nothing
/// is zeroed or allocated per read.
///
/// # Errors
/// When the read fails.
pub fn read_at_most(file: &std::fs::File, offset: u64, dst: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    fill(dst, |room, filled| {
        file.read_at(room, offset + filled as u64)
    })
    .map_err(|(_, e)| e)
}

/// Fill `dst` from a stream; returns how many bytes were read (fewer than `dst.len()` only
/// at the end of the stream).
///
/// # Errors
/// When a read fails: the error, with how many bytes were read into `dst` before it.
pub fn read_full(reader: &mut impl Read, dst: &mut [u8]) -> Result<usize, (usize, std::io::Error)> {
    fill(dst, |room, _| reader.read(room))
}

/// Call `read` with the unfilled rest of `dst` and how much is filled, until `dst` is full
/// or `read` returns 0; interrupted reads are retried.
fn fill(
    dst: &mut [u8],
    mut read: impl FnMut(&mut [u8], usize) -> std::io::Result<usize>,
) -> Result<usize, (usize, std::io::Error)> {
    let mut filled = 0;
    while filled < dst.len() {
        match read(&mut dst[filled..], filled) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((filled, e)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call and is interrupted every other
    /// call, then fails once `fail_after` bytes are out.
    struct Choppy {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        calls: usize,
        fail_after: Option<usize>,
    }

    impl Read for Choppy {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            if self.fail_after.is_some_and(|f| self.pos >= f) {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn fills_through_short_and_interrupted_reads() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut r = Choppy {
            data: data.clone(),
            pos: 0,
            step: 7,
            calls: 0,
            fail_after: None,
        };
        let mut dst = [0u8; 64];
        assert_eq!(read_full(&mut r, &mut dst).unwrap(), 64);
        assert_eq!(&dst[..], &data[..64]);
        let mut rest = [0u8; 64];
        assert_eq!(read_full(&mut r, &mut rest).unwrap(), 36);
        assert_eq!(&rest[..36], &data[64..]);
    }

    #[test]
    fn a_failed_read_says_how_much_came_before() {
        let mut r = Choppy {
            data: vec![1; 50],
            pos: 0,
            step: 10,
            calls: 0,
            fail_after: Some(20),
        };
        let mut dst = [0u8; 40];
        let (got, err) = read_full(&mut r, &mut dst).unwrap_err();
        assert_eq!(got, 20);
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn positioned_reads_fill_from_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut dst = [0u8; 8];
        assert_eq!(read_at_most(&file, 4, &mut dst).unwrap(), 6);
        assert_eq!(&dst[..6], b"456789");
    }
}
