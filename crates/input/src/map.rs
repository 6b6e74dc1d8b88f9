//! Memory-mapped regular files: the bytes of a log without copying them out of the page
//! cache. Reading a warm file with `pread` spends a quarter of a literal search in the
//! kernel's copy; a mapping lets the search run on the cached pages themselves.
//!
//! This is the one module allowed `unsafe`: a mapping stays valid only while no other
//! process truncates the file. If one does, touching the lost pages raises SIGBUS, the
//! risk ripgrep also accepts for the speed. Callers read the file instead when mapping
//! fails; `RunOptions::use_mmap` turns mapping off for the reading pipeline. It must not be
//! used for stdin, pipes or gzip (they are streams).
#![allow(unsafe_code)]

/// A read-only mapping of a whole regular file.
#[derive(Debug)]
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Map `file` read-only. `None` for an empty file (nothing to map) or when the file
    /// cannot be mapped (the caller reads it instead).
    #[must_use]
    pub fn open(file: &std::fs::File) -> Option<MappedFile> {
        if file.metadata().ok()?.len() == 0 {
            return None;
        }
        // SAFETY: the mapping is read-only and private to this process. The remaining
        // hazard, another process truncating the file while it is mapped, is documented
        // above and accepted; nothing here writes through the mapping.
        let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
        Some(MappedFile { map })
    }

    /// The file's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Tell the kernel that `offset..offset + len` will be read soon, in order (it reads
    /// ahead and maps pages in larger batches). A hint: failure changes nothing.
    pub fn will_read(&self, offset: usize, len: usize) {
        let len = len.min(self.map.len().saturating_sub(offset));
        if len > 0 {
            let _ = self
                .map
                .advise_range(memmap2::Advice::WillNeed, offset, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let map = MappedFile::open(&file).unwrap();
        assert_eq!(map.bytes(), b"one\ntwo\n");
        map.will_read(0, 1 << 20);
        drop(map);
        std::fs::write(&path, b"").unwrap();
        let empty = std::fs::File::open(&path).unwrap();
        assert!(MappedFile::open(&empty).is_none());
    }
}
