//! Exception chains read out of stack-trace text, for every runtime the app parsers meet.
//!
//! Given the text of a stack trace (a JSON `stack_trace` field or the continuation lines of
//! a text record) this finds the exception header lines and orders them outermost first:
//! Java `Caused by:` chains (and logback's root-cause-first `Wrapped by:`), Python chained
//! tracebacks (whose blocks run innermost first), .NET ` ---> ` inner exceptions, Node
//! `[cause]:` entries, and Go panics. It only reads structure; it must not decide what kind
//! of failure a chain reports (that is [`super::errors`]) and it must not allocate per frame.

/// One exception in a chain: its type name and the whole header line it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link<'t> {
    /// The exception type as written (`java.net.SocketException`, `ConnectionResetError`).
    pub type_name: &'t str,
    /// The header line without its `Caused by: ` style prefix
    /// (`java.net.SocketException: Connection reset`).
    pub line: &'t str,
}

/// What [`parse_chain`] found in a stack trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain<'t> {
    /// Exceptions from outermost to innermost (root cause last).
    pub links: Vec<Link<'t>>,
    /// The message of a Go `panic: ` line, which names no exception type.
    pub panic: Option<&'t str>,
}

impl<'t> Chain<'t> {
    /// The innermost exception, if any was found.
    #[must_use]
    pub fn root(&self) -> Option<Link<'t>> {
        self.links.last().copied()
    }
}

/// Lines looked at per trace: records are already capped, this bounds pathological input.
const MAX_LINES: usize = 8192;
/// Links kept per chain; real chains are a handful deep.
const MAX_LINKS: usize = 64;

/// Type-name endings that mark a bare identifier as an exception class.
const TYPE_SUFFIXES: &[&str] = &[
    "Exception",
    "Error",
    "Throwable",
    "Fault",
    "Exit",
    "Failure",
    "Interrupt",
    "Rejection",
];

/// Read the exception chain out of `text`.
#[must_use]
pub fn parse_chain(text: &str) -> Chain<'_> {
    let mut chain = Chain::default();
    // Java, .NET and Node links in the order written (outermost first, unless logback wrote
    // the root cause first, which `Wrapped by:` gives away).
    let mut written: Vec<Link<'_>> = Vec::new();
    let mut root_first = false;
    // Python blocks in the order written, which is innermost first.
    let mut python: Vec<Link<'_>> = Vec::new();
    let mut in_traceback = false;
    let mut suppressed_indent: Option<usize> = None;
    let mut seen_content = false;

    for raw in text.split('\n').take(MAX_LINES) {
        let line = raw.trim_end_matches('\r');
        let body = line.trim_start();
        if body.is_empty() {
            continue;
        }
        let indent = line.len() - body.len();
        let first = !seen_content;
        seen_content = true;
        if written.len() + python.len() >= MAX_LINKS {
            break;
        }

        if body.starts_with("Traceback (most recent call last)") {
            in_traceback = true;
            continue;
        }
        if in_traceback {
            // Frames (`  File "...", line N, in f`) and source lines are indented; the first
            // line at column 0 that reads `Type: message` is the exception line that ends
            // the block. A source line whose indentation a paste removed is skipped.
            if indent > 0 || is_frame(body) {
                continue;
            }
            if let Some(link) = exception_header(body, true) {
                python.push(link);
                in_traceback = false;
            }
            continue;
        }
        if let Some(rest) = body.strip_prefix("Caused by: ") {
            // Java prints a suppressed exception's causes at the indentation of its
            // `Suppressed:` line, and the main chain's causes at column 0. When a paste lost
            // the indentation (all at 0) the cause is taken as the main chain's.
            if suppressed_indent.is_some_and(|s| s > 0 && indent >= s) {
                continue;
            }
            suppressed_indent = None;
            push_header(&mut written, rest);
            continue;
        }
        if let Some(rest) = body.strip_prefix("Wrapped by: ") {
            root_first = true;
            suppressed_indent = None;
            push_header(&mut written, rest);
            continue;
        }
        if body.starts_with("Suppressed: ") {
            suppressed_indent = Some(indent);
            continue;
        }
        if let Some(rest) = body.strip_prefix("---> ") {
            push_header(&mut written, rest);
            continue;
        }
        if let Some(rest) = body.strip_prefix("[cause]: ") {
            push_header(&mut written, rest);
            continue;
        }
        if let Some(rest) = body.strip_prefix("panic: ") {
            if chain.panic.is_none() {
                chain.panic = Some(rest.trim_end());
            }
            continue;
        }
        if first {
            // .NET Framework writes inner exceptions on the same line: `A: x ---> B: y`.
            for part in body.split(" ---> ") {
                if let Some(link) = exception_header(strip_thread_prefix(part), false) {
                    written.push(link);
                }
            }
        }
    }

    if root_first {
        written.reverse();
    }
    if python.is_empty() {
        chain.links = written;
    } else {
        python.reverse();
        chain.links = python;
    }
    chain
}

fn push_header<'t>(links: &mut Vec<Link<'t>>, rest: &'t str) {
    // A `Caused by:` line is a header by construction, so the type test is lenient.
    if let Some(link) = exception_header(rest.trim(), true) {
        links.push(link);
    }
}

/// `Exception in thread "main" java.lang.X: msg` -> `java.lang.X: msg`.
fn strip_thread_prefix(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("Exception in thread \"")
        && let Some(close) = rest.find("\" ")
    {
        return &rest[close + 2..];
    }
    line
}

/// A stack frame or an elision marker in any runtime.
fn is_frame(body: &str) -> bool {
    body.starts_with("at ")
        || body.starts_with("...")
        || body.starts_with("File \"")
        || body.starts_with("--- End of")
        || body.starts_with("goroutine ")
        || body.starts_with("created by ")
}

/// Read `Type: message`, `Type (code): message` or a bare `Type` at the start of `line`.
/// `lenient` accepts any identifier as the type (the position already says it is one);
/// otherwise the token must look like a class name (qualified and capitalised, or ending in
/// `Exception`/`Error`/...), so an ordinary sentence is not taken for an exception.
#[must_use]
pub fn exception_header(line: &str, lenient: bool) -> Option<Link<'_>> {
    let line = line.trim_end_matches('\r');
    let end = line
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'$' | b'+' | b'`')))
        .unwrap_or(line.len());
    let token = line.get(..end)?;
    let rest = line.get(end..)?;
    let first = token.bytes().next()?;
    if !(first.is_ascii_alphabetic() || first == b'_') || token.ends_with('.') {
        return None;
    }
    let terminated = rest.is_empty() || rest.starts_with(':') || rest.starts_with(" (");
    if !terminated {
        return None;
    }
    // Without a message even a lenient read wants a class-like name, so a Python source
    // line such as `raise` is not taken for an exception.
    let bare_ok = !rest.is_empty() || looks_like_type(token) || first.is_ascii_uppercase();
    if (!lenient && !looks_like_type(token)) || !bare_ok {
        return None;
    }
    Some(Link {
        type_name: token,
        line: line.trim_end(),
    })
}

fn looks_like_type(token: &str) -> bool {
    if TYPE_SUFFIXES.iter().any(|s| token.ends_with(s)) {
        return true;
    }
    match token.rsplit_once('.') {
        Some((_, last)) => last.bytes().next().is_some_and(|b| b.is_ascii_uppercase()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn types(text: &str) -> Vec<&str> {
        parse_chain(text)
            .links
            .iter()
            .map(|l| l.type_name)
            .collect()
    }

    fn root(text: &str) -> Option<&str> {
        parse_chain(text).root().map(|l| l.line)
    }

    #[test]
    fn java_caused_by_chain() {
        let text = "org.springframework.web.client.ResourceAccessException: I/O error on GET request for \"http://orders:8080/api\": Connection reset\n\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)\nCaused by: java.net.SocketException: Connection reset\n\tat java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:328)\n\t... 40 common frames omitted";
        assert_eq!(
            types(text),
            [
                "org.springframework.web.client.ResourceAccessException",
                "java.net.SocketException"
            ]
        );
        assert_eq!(
            root(text),
            Some("java.net.SocketException: Connection reset")
        );
    }

    #[test]
    fn java_root_cause_first() {
        let text = "java.net.SocketException: Connection reset\n\tat a.B.c(B.java:1)\nWrapped by: org.apache.http.X: wrapped\n\tat a.B.d(B.java:2)\n\t... 3 common frames omitted\nWrapped by: com.acme.OuterException: outer\n\tat a.B.e(B.java:3)";
        assert_eq!(
            types(text),
            [
                "com.acme.OuterException",
                "org.apache.http.X",
                "java.net.SocketException"
            ]
        );
    }

    #[test]
    fn suppressed_causes_stay_out_of_the_main_chain() {
        let text = "java.io.IOException: outer\n\tat a.B.c(B.java:1)\n\tSuppressed: java.lang.IllegalStateException: close failed\n\t\tat a.B.d(B.java:2)\n\tCaused by: java.lang.RuntimeException: inner of suppressed\n\t\t... 2 more\nCaused by: java.net.SocketException: Connection reset by peer\n\t... 5 more";
        assert_eq!(
            types(text),
            ["java.io.IOException", "java.net.SocketException"]
        );
    }

    #[test]
    fn python_chained_tracebacks_run_innermost_first() {
        let text = "Traceback (most recent call last):\n  File \"/app/c.py\", line 10, in get\n    resp = conn.getresponse()\nConnectionResetError: [Errno 104] Connection reset by peer\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/c.py\", line 20, in call\n    return session.get(url)\nrequests.exceptions.ConnectionError: ('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))";
        assert_eq!(
            types(text),
            [
                "requests.exceptions.ConnectionError",
                "ConnectionResetError"
            ]
        );
        assert_eq!(
            root(text),
            Some("ConnectionResetError: [Errno 104] Connection reset by peer")
        );
    }

    #[test]
    fn python_traceback_without_indentation() {
        let text = "Traceback (most recent call last):\nFile \"/app/c.py\", line 10, in get\nresp = conn.getresponse()\nraise\nhttp.client.RemoteDisconnected: Remote end closed connection without response";
        assert_eq!(types(text), ["http.client.RemoteDisconnected"]);
    }

    #[test]
    fn dotnet_inner_exceptions() {
        let text = "System.Net.Http.HttpRequestException: An error occurred while sending the request.\n ---> System.IO.IOException: Unable to read data from the transport connection: Connection reset by peer.\n ---> System.Net.Sockets.SocketException (104): Connection reset by peer\n   at System.Net.Sockets.Socket.Receive()\n   --- End of inner exception stack trace ---\n   at System.Net.Http.HttpConnection.SendAsync()";
        assert_eq!(
            types(text),
            [
                "System.Net.Http.HttpRequestException",
                "System.IO.IOException",
                "System.Net.Sockets.SocketException"
            ]
        );
        let inline = "System.Net.WebException: The underlying connection was closed. ---> System.IO.IOException: Unable to read data ---> System.Net.Sockets.SocketException: An existing connection was forcibly closed by the remote host";
        assert_eq!(types(inline).len(), 3);
    }

    #[test]
    fn node_error_and_cause() {
        let text = "TypeError: fetch failed\n    at Object.fetch (node:internal/deps/undici/undici:11118:11) {\n  [cause]: SocketError: other side closed\n      at Socket.onSocketEnd (node:internal/deps/undici/undici:8280:26) {\n    code: 'UND_ERR_SOCKET'\n  }\n}";
        assert_eq!(types(text), ["TypeError", "SocketError"]);
        let hangup = "Error: socket hang up\n    at connResetException (node:internal/errors:705:14) {\n  code: 'ECONNRESET'\n}";
        assert_eq!(types(hangup), ["Error"]);
    }

    #[test]
    fn go_panic_has_no_types() {
        let text = "panic: read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d";
        let chain = parse_chain(text);
        assert!(chain.links.is_empty());
        assert_eq!(
            chain.panic,
            Some("read tcp 10.0.0.1:1234->10.0.0.2:8080: read: connection reset by peer")
        );
    }

    #[test]
    fn sentences_are_not_exceptions() {
        assert!(exception_header("Request processing failed: boom", false).is_none());
        assert!(exception_header("Detail: Key (ref)=(1) already exists.", false).is_none());
        assert!(exception_header("e.g. something", false).is_none());
        assert!(exception_header("java.lang.NullPointerException", false).is_some());
        assert_eq!(
            exception_header(
                "Exception in thread \"main\" java.net.SocketException: x",
                false
            ),
            None
        );
        assert_eq!(
            types("Exception in thread \"main\" java.net.SocketException: Connection reset"),
            ["java.net.SocketException"]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,300}") {
            let _ = parse_chain(&s);
        }

        #[test]
        fn never_panics_on_trace_like_text(s in "(Caused by: |Wrapped by: |\t|---> |Traceback \\(most recent call last\\):|\n|[a-z.]{1,8}Exception|: | \\(|panic: |Suppressed: )*") {
            let _ = parse_chain(&s);
        }
    }
}
