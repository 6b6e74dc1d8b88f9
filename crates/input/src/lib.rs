//! Finds and opens the inputs an operator collected.
//!
//! Paths may be files, directories (walked recursively, in sorted order), gzip files
//! (recognised by their magic bytes, not their name) or `-` for standard input. Each input
//! gets an [`InputFile`] with a stable id, a display name, how to read it, what it looks like
//! (log lines or a configuration document) and the workload names its path implies.
//!
//! This crate reads bytes and nothing more: it never interprets log lines (that is
//! `meshdoctor-logs`) and never parses configuration (that is `meshdoctor-config`).

mod map;
mod names;
mod open;
mod sniff;

pub use map::MappedFile;
pub use names::{PathNames, names_from_path, workload_from_pod};
pub use open::{ByteSource, open_stream, read_at_most, read_full};
pub use sniff::{ContentKind, sniff_content};

use meshdoctor_model::FileId;
use std::path::{Path, PathBuf};

/// Errors while finding or opening inputs. Bad *content* is never an error here.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A gzip stream was corrupt.
    #[error("{path}: corrupt gzip data: {source}")]
    Gzip {
        /// The path as given.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How the bytes of an input are obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// A regular uncompressed file of this many bytes; can be read in parallel ranges.
    Plain {
        /// File size in bytes.
        len: u64,
    },
    /// A gzip-compressed file; must be streamed.
    Gzip,
    /// Standard input; must be streamed, and can be read only once.
    Stdin,
}

/// One input to analyse.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// Stable index in the list (the order of discovery).
    pub id: FileId,
    /// Where it is; `-` for stdin.
    pub path: PathBuf,
    /// The name to show in reports (the path as the user spelled it, joined with the part
    /// below a directory they named).
    pub display: String,
    /// How to read it.
    pub access: Access,
    /// What its first bytes look like.
    pub content: ContentKind,
    /// Names implied by the path (`<namespace>/<pod>/<container>.log` and similar).
    pub names: PathNames,
}

/// Options for [`discover`].
#[derive(Clone, Debug, Default)]
pub struct DiscoverOptions {
    /// Follow symbolic links while walking directories.
    pub follow_links: bool,
}

/// Expand user-supplied paths into inputs. Directories are walked recursively and sorted so
/// that ids are deterministic. Unreadable paths are returned as errors next to the inputs
/// that could be opened; they never stop the others.
pub fn discover(paths: &[PathBuf], options: &DiscoverOptions) -> (Vec<InputFile>, Vec<InputError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            push_input(
                &mut inputs,
                path.clone(),
                "-".to_string(),
                Access::Stdin,
                ContentKind::Log,
            );
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk_dir(path, options, &mut inputs, &mut errors),
            Ok(_) => add_file(path, path.display().to_string(), &mut inputs, &mut errors),
            Err(source) => errors.push(InputError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
    (inputs, errors)
}

fn walk_dir(
    root: &Path,
    options: &DiscoverOptions,
    inputs: &mut Vec<InputFile>,
    errors: &mut Vec<InputError>,
) {
    let walker = walkdir::WalkDir::new(root)
        .follow_links(options.follow_links)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => {
                let name = entry.file_name().to_string_lossy();
                // Hidden files (editor swap files, .DS_Store) and our own outputs are noise.
                if name.starts_with('.') {
                    continue;
                }
                add_file(
                    entry.path(),
                    entry.path().display().to_string(),
                    inputs,
                    errors,
                );
            }
            Ok(_) => {}
            Err(err) => {
                let path = err
                    .path()
                    .map_or_else(|| root.display().to_string(), |p| p.display().to_string());
                let source = err
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error"));
                errors.push(InputError::Io { path, source });
            }
        }
    }
}

fn add_file(
    path: &Path,
    display: String,
    inputs: &mut Vec<InputFile>,
    errors: &mut Vec<InputError>,
) {
    match sniff::sniff_file(path) {
        Ok((access, content)) => push_input(inputs, path.to_path_buf(), display, access, content),
        Err(source) => errors.push(InputError::Io {
            path: display,
            source,
        }),
    }
}

fn push_input(
    inputs: &mut Vec<InputFile>,
    path: PathBuf,
    display: String,
    access: Access,
    content: ContentKind,
) {
    let id = FileId::try_from(inputs.len()).unwrap_or(FileId::MAX);
    let names = names_from_path(&path);
    inputs.push(InputFile {
        id,
        path,
        display,
        access,
        content,
        names,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn walks_directories_in_sorted_order_and_reports_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("shop/orders-5d8f9c7b6-x2x4z")).unwrap();
        std::fs::write(
            dir.path()
                .join("shop/orders-5d8f9c7b6-x2x4z/istio-proxy.log"),
            b"x\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("a.log"), b"x\n").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), gz.finish().unwrap()).unwrap();

        let missing = dir.path().join("nope");
        let (inputs, errors) = discover(
            &[dir.path().to_path_buf(), missing],
            &DiscoverOptions::default(),
        );
        let names: Vec<_> = inputs
            .iter()
            .map(|i| {
                i.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "a.log",
                "b.txt",
                "shop/orders-5d8f9c7b6-x2x4z/istio-proxy.log"
            ]
        );
        assert_eq!(inputs[1].access, Access::Gzip);
        assert_eq!(inputs[2].names.workload.as_deref(), Some("orders"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("nope"));
    }
}
