//! Where one log record ends and the next begins.
//!
//! A record is a header line plus the continuation lines that follow it: stack frames,
//! `Caused by:` chains, Python tracebacks, Go panics, Envoy header dumps. The decision is
//! made from the line alone (after unwrapping collector prefixes), never from context, so
//! that a file can be cut into ranges at record starts and processed in parallel with the
//! same result as reading it in one piece.

/// Physical lines longer than this are not parsed (counted as too long).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Continuation lines beyond this many are cut off a record (counted, not parsed), so a
/// runaway multi-line message cannot hold the whole input.
pub const MAX_CONTINUATION_LINES: u32 = 4096;

const CONTINUATION_PREFIXES: &[&[u8]] = &[
    b"Caused by:",
    b"Wrapped by:",
    b"Suppressed:",
    b"... ",
    b"Traceback (most recent call last)",
    b"During handling of the above exception",
    b"The above exception was the direct cause",
    b"goroutine ",
    b"panic: ",
    b"created by ",
    b"--- End of",
    b"---> ",
    b"}",
    b"]",
    b")",
    b"'",
];

/// Bytes that begin some continuation prefix. Nearly every line starts with another byte
/// (`{`, `[`, a digit), which settles it without comparing prefixes.
static PREFIX_FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < CONTINUATION_PREFIXES.len() {
        table[CONTINUATION_PREFIXES[i][0] as usize] = true;
        i += 1;
    }
    table
};

const EXCEPTION_SUFFIXES: &[&[u8]] = &[b"Exception", b"Error", b"Throwable", b"Fault", b"Exit"];

/// True when `line` (already unwrapped, without its newline) continues the record above.
#[must_use]
pub fn is_continuation(line: &[u8]) -> bool {
    let Some(&first) = line.first() else {
        // Blank lines occur inside Python chained tracebacks and Envoy dumps.
        return true;
    };
    if first == b' ' || first == b'\t' {
        return true;
    }
    if PREFIX_FIRST_BYTES[usize::from(first)]
        && CONTINUATION_PREFIXES.iter().any(|p| line.starts_with(p))
    {
        return true;
    }
    // `at com.example.Foo.bar(Foo.java:12)` pasted without its indentation.
    if line.starts_with(b"at ") && line.contains(&b'(') {
        return true;
    }
    first.is_ascii_alphabetic() && starts_with_exception_type(line)
}

/// `java.net.SocketException: Connection reset`, `ConnectionResetError: [Errno 104] ...`,
/// `Error: socket hang up`, `System.IO.IOException: ...`.
fn starts_with_exception_type(line: &[u8]) -> bool {
    let end = line
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'$'))
        .unwrap_or(line.len());
    let token = &line[..end];
    let rest = &line[end..];
    let ends_token = rest.is_empty()
        || rest.starts_with(b":")
        || rest.starts_with(b" [")
        || rest.starts_with(b" (");
    ends_token && EXCEPTION_SUFFIXES.iter().any(|s| token.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix passes the first-byte table: each one, alone or followed by text, still
    /// continues the record above.
    #[test]
    fn every_continuation_prefix_gets_past_the_first_byte_table() {
        for prefix in CONTINUATION_PREFIXES {
            for tail in [&b""[..], b" 40 more", b"x"] {
                let line = [*prefix, tail].concat();
                assert!(
                    is_continuation(&line),
                    "{:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
    }

    #[test]
    fn continuation_shapes() {
        for line in [
            "\tat java.base/java.net.SocketInputStream.read(Unknown Source)",
            "Caused by: java.net.SocketException: Connection reset",
            "\t... 40 common frames omitted",
            "... 32 common frames omitted",
            "at org.glassfish.jersey.client.ClientRuntime.invoke(ClientRuntime.java:278)",
            "java.net.SocketException: Connection reset",
            "ConnectionResetError: [Errno 104] Connection reset by peer",
            "Traceback (most recent call last):",
            "  File \"/app/x.py\", line 3, in <module>",
            "goroutine 1 [running]:",
            "':authority', 'orders:8080'",
            "",
            "   --- End of inner exception stack trace ---",
            "Error: socket hang up",
        ] {
            assert!(is_continuation(line.as_bytes()), "{line:?}");
        }
        for line in [
            "2020-10-23T00:26:14.869776Z\tdebug\tenvoy filter\tx",
            "[2024-05-01T10:00:00.123Z] \"GET / HTTP/1.1\" 200",
            "{\"level\":\"info\"}",
            "ERROR: something broke",
            "INFO  main starting",
            "Picked up JAVA_TOOL_OPTIONS: -Xmx1g",
            "at least we tried",
        ] {
            assert!(!is_continuation(line.as_bytes()), "{line:?}");
        }
    }
}
