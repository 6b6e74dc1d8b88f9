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
    let mut filled = 0;
    while filled < dst.len() {
        match file.read_at(&mut dst[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
