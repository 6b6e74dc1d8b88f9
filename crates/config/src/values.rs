//! Scalar grammars shared by the readers: durations and Istio versions.
//!
//! Pure functions on strings; no document knowledge here.

use serde::Serialize;
use std::time::Duration;

/// Parse a duration as written in Istio/Envoy config: Go/proto-JSON strings (`100ms`, `5s`,
/// `0.100s`, `1h`, `1m30s`, `1.5s`, `500us`, `0`), or a bare number of seconds.
#[must_use]
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().trim_matches('"');
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_to_duration(secs);
    }
    let mut total = 0f64;
    let mut rest = text;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * factor;
        any = true;
    }
    if any { secs_to_duration(total) } else { None }
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    if (0.0..1e12).contains(&secs) {
        // Round to whole microseconds: `0.100s` must be exactly 100 ms.
        let micros = (secs * 1e6).round();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(Duration::from_micros(micros as u64))
    } else {
        None
    }
}

/// Format a duration the way Istio writes it (`100ms`, `5s`, `1h`, `0s`).
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && d.as_micros() > 0 {
        return format!("{}us", d.as_micros());
    }
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An Istio release, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IstioVersion {
    /// Major (1).
    pub major: u32,
    /// Minor (6 for 1.6.8).
    pub minor: u32,
    /// Patch (8 for 1.6.8); 0 when the tag gives none.
    pub patch: u32,
}

impl IstioVersion {
    /// A version from its parts.
    #[must_use]
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parse a version or an image tag: `1.6.8`, `1.6.8-distroless`, `1.20.3-debug`, `v1.7.0`,
    /// `1.8`, `1-20-3` (revision names). Returns `None` for `latest`, digests and anything that
    /// is not an Istio 1.x release.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches(['v', 'V']);
        let sep = if text.contains('.') { '.' } else { '-' };
        let mut parts = text.splitn(3, sep);
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = leading_number(parts.next()?)?;
        let patch = parts.next().and_then(leading_number).unwrap_or(0);
        // Istio has only ever shipped 1.x; anything else is some other product's tag.
        (major == 1 && minor < 100).then_some(Self::new(major, minor, patch))
    }

    /// The version from a container image reference whose repository is an Istio image
    /// (`docker.io/istio/proxyv2:1.6.8`, `gcr.io/istio-release/pilot:1.20.3-distroless`).
    #[must_use]
    pub fn from_image(image: &str) -> Option<Self> {
        let image = image.split('@').next().unwrap_or(image);
        let (repo, tag) = image.rsplit_once(':')?;
        if tag.contains('/') {
            return None; // `host:port/repo` without a tag
        }
        let name = repo.rsplit('/').next().unwrap_or(repo);
        let istio_image = matches!(
            name,
            "proxyv2" | "pilot" | "proxy_init" | "istioctl" | "operator"
        ) || repo.contains("istio");
        if !istio_image {
            return None;
        }
        Self::parse(tag)
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

impl std::fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_all_spellings() {
        let ms = |t: &str| parse_duration(t).map(|d| d.as_millis());
        assert_eq!(ms("100ms"), Some(100));
        assert_eq!(ms("0.100s"), Some(100));
        assert_eq!(ms("5s"), Some(5000));
        assert_eq!(ms("\"5000ms\""), Some(5000));
        assert_eq!(ms("1m30s"), Some(90_000));
        assert_eq!(ms("1h"), Some(3_600_000));
        assert_eq!(ms("0s"), Some(0));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("15"), Some(15_000));
        assert_eq!(ms("fast"), None);
        assert_eq!(ms("-5s"), None);
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn versions_from_tags_and_images() {
        assert_eq!(
            IstioVersion::parse("1.6.8"),
            Some(IstioVersion::new(1, 6, 8))
        );
        assert_eq!(
            IstioVersion::parse("1.20.3-distroless"),
            Some(IstioVersion::new(1, 20, 3))
        );
        assert_eq!(
            IstioVersion::parse("1-20-3"),
            Some(IstioVersion::new(1, 20, 3))
        );
        assert_eq!(IstioVersion::parse("1.8"), Some(IstioVersion::new(1, 8, 0)));
        assert_eq!(IstioVersion::parse("latest"), None);
        assert_eq!(
            IstioVersion::from_image("docker.io/istio/proxyv2:1.6.8"),
            Some(IstioVersion::new(1, 6, 8))
        );
        assert_eq!(
            IstioVersion::from_image("registry:5000/istio/proxyv2"),
            None
        );
        assert_eq!(IstioVersion::from_image("nginx:1.19.2"), None);
        assert!(IstioVersion::new(1, 6, 8) < IstioVersion::new(1, 6, 9));
        assert!(IstioVersion::new(1, 7, 0) < IstioVersion::new(1, 10, 0));
    }
}
