//! The lab's mesh identity: a root CA and SPIFFE workload certificates minted at start (rcgen),
//! and the rustls client/server configurations the sidecars use for mTLS.
//!
//! Like Istio, workload certificates carry only a URI SAN
//! (`spiffe://cluster.local/ns/<ns>/sa/<sa>`), so the client side needs its own verifier: the
//! chain is checked with rustls' webpki helpers, then the URI SAN is compared with the identity
//! the registry expects. The server advertises no ALPN on purpose: a rustls server with a list
//! aborts on Istio's client ALPN, where BoringSSL would carry on (dataplane.md §5.3).
//! This module must not touch sockets.

use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Istio's ALPN for HTTP/1.1 traffic between sidecars (`istio.alpn` filter, 1.6).
pub const ALPN_HTTP11: &[&[u8]] = &[b"istio-http/1.1", b"istio"];
/// Istio's ALPN for TCP traffic between sidecars (cluster level, proxies >= 1.5).
pub const ALPN_TCP: &[&[u8]] = &[b"istio-peer-exchange", b"istio"];

/// SPIFFE id of a service account in the lab's trust domain.
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://cluster.local/ns/{namespace}/sa/{service_account}")
}

/// The mesh CA plus the material every workload needs.
pub struct MeshCa {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// One workload's certificate and key.
pub struct WorkloadIdentity {
    /// The SPIFFE id in the certificate's URI SAN.
    pub spiffe: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    /// PEM of the leaf, written to the run directory for inspection.
    pub cert_pem: String,
}

impl MeshCa {
    /// Mint a fresh root CA (ECDSA P-256, like istiod's self-signed root by default is RSA; the
    /// algorithm does not matter for any behaviour the lab reproduces).
    pub fn new() -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = KeyPair::generate().context("CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "cluster.local");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).context("CA self-sign")?;
        let ca_der = cert.der().clone();
        let ca_pem = cert.pem();
        let mut roots = RootCertStore::empty();
        roots.add(ca_der.clone()).context("add CA to root store")?;
        Ok(Self {
            provider,
            roots: Arc::new(roots),
            ca_der,
            ca_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// PEM of the root certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Mint a workload certificate whose only SAN is the SPIFFE URI (as Istio does).
    pub fn workload(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> anyhow::Result<WorkloadIdentity> {
        let spiffe = spiffe_id(namespace, service_account);
        let key = KeyPair::generate().context("workload key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("leaf params")?;
        let uri = rcgen::string::Ia5String::try_from(spiffe.as_str()).context("SPIFFE URI")?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &self.issuer).context("sign leaf")?;
        Ok(WorkloadIdentity {
            spiffe,
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
        })
    }

    /// Server (inbound) config: client certificates required and checked against the mesh CA;
    /// no ALPN list (see the module comment).
    pub fn server_config(
        &self,
        id: &WorkloadIdentity,
    ) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .build()
                .context("client verifier")?;
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(id.chain.clone(), key_der(&id.key_der))
            .context("server cert")?;
        Ok(Arc::new(config))
    }

    /// Client (outbound) config for one destination identity and ALPN list.
    pub fn client_config(
        &self,
        id: &WorkloadIdentity,
        expected_peer: &str,
        alpn: &[&[u8]],
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let verifier = Arc::new(SpiffeVerifier {
            roots: self.roots.clone(),
            provider: self.provider.clone(),
            expected: expected_peer.to_string(),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(id.chain.clone(), key_der(&id.key_der))
            .context("client cert")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn key_der(bytes: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.to_vec()))
}

/// Checks the chain against the mesh root, then that the leaf's URI SAN is the expected SPIFFE
/// id (Envoy's `match_subject_alt_names`). The SNI is not a DNS name to check: Istio uses it
/// only to pick a chain.
#[derive(Debug)]
struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    expected: String,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let uris = uri_sans(end_entity.as_ref());
        if uris.iter().any(|u| u == &self.expected) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// URI SANs of a DER certificate, found by walking the DER just far enough to reach the
/// subjectAltName extension (OID 2.5.29.17). Returns nothing on malformed input.
pub fn uri_sans(der: &[u8]) -> Vec<String> {
    const SAN_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
    let mut out = Vec::new();
    let mut from = 0;
    // The OID can appear once per certificate; the loop is bounded by the input length.
    while let Some(pos) = find(der.get(from..).unwrap_or(&[]), SAN_OID) {
        let mut at = from + pos + SAN_OID.len();
        from = at;
        // Optional `critical BOOLEAN`.
        if der.get(at) == Some(&0x01) {
            match tlv(der, at) {
                Some((_, end)) => at = end,
                None => break,
            }
        }
        // extnValue OCTET STRING wrapping GeneralNames SEQUENCE.
        let Some((octets, _)) = tlv(der, at).filter(|_| der.get(at) == Some(&0x04)) else {
            continue;
        };
        let Some(seq_start) = Some(octets.0).filter(|s| der.get(*s) == Some(&0x30)) else {
            continue;
        };
        let Some(((mut p, seq_end), _)) = tlv(der, seq_start) else {
            continue;
        };
        while p < seq_end {
            let tag = der.get(p).copied();
            let Some(((vs, ve), next)) = tlv(der, p) else {
                break;
            };
            if tag == Some(0x86)
                && let Some(bytes) = der.get(vs..ve)
            {
                out.push(String::from_utf8_lossy(bytes).into_owned());
            }
            p = next;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse one DER TLV at `at`: returns ((value start, value end), next offset).
fn tlv(der: &[u8], at: usize) -> Option<((usize, usize), usize)> {
    let len0 = *der.get(at + 1)? as usize;
    let (len, hdr) = if len0 < 0x80 {
        (len0, 2)
    } else {
        let n = len0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *der.get(at + 2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let start = at + hdr;
    let end = start.checked_add(len)?;
    if end > der.len() {
        return None;
    }
    Some(((start, end), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_cert_has_only_the_spiffe_uri() {
        let ca = MeshCa::new().unwrap();
        let id = ca.workload("default", "service-b").unwrap();
        let leaf = id.chain.first().unwrap();
        assert_eq!(
            uri_sans(leaf.as_ref()),
            vec!["spiffe://cluster.local/ns/default/sa/service-b".to_string()]
        );
    }

    async fn handshake(expected: &str) -> Result<Option<Vec<u8>>, std::io::Error> {
        let ca = MeshCa::new().unwrap();
        let b = ca.workload("default", "service-b").unwrap();
        let a = ca.workload("default", "service-a").unwrap();
        let server = tokio_rustls::TlsAcceptor::from(ca.server_config(&b).unwrap());
        let client =
            tokio_rustls::TlsConnector::from(ca.client_config(&a, expected, ALPN_HTTP11).unwrap());
        let (c, s) = tokio::io::duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            server
                .accept(s)
                .await
                .map(|t| t.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
        });
        let name =
            ServerName::try_from("outbound_.80_._.service-b.default.svc.cluster.local").unwrap();
        let cli = client.connect(name, c).await;
        let srv = srv.await.unwrap();
        cli?;
        srv
    }

    #[tokio::test]
    async fn client_checks_the_spiffe_san_and_istio_alpn_is_not_rejected() {
        // Right identity: handshake completes; the server advertises no ALPN, so none is chosen
        // (BoringSSL would also carry on) instead of rustls aborting with no_application_protocol.
        assert_eq!(
            handshake("spiffe://cluster.local/ns/default/sa/service-b")
                .await
                .unwrap(),
            None
        );
        // Wrong identity: the client refuses the server certificate.
        let err = handshake("spiffe://cluster.local/ns/default/sa/service-c")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not valid for name")
                || err.to_string().contains("NotValidForName"),
            "{err}"
        );
    }

    #[test]
    fn uri_sans_never_panics_on_garbage() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = uri_sans(&junk);
        }
        let _ = uri_sans(&[0x06, 0x03, 0x55, 0x1d, 0x11, 0x04, 0xff]);
    }
}
