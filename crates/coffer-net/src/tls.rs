//! Mutual TLS between signer daemons (clients, dialling out) and the Coffer server,
//! authenticated by the nodes' Ed25519 identity keys ([`NodeKey`]). This module owns the
//! rustls configurations of both ends, the verifiers that pin peer keys, and reading the
//! peer's key back after the handshake.
//!
//! Approach: [RFC 7250] raw public keys, as rustls 0.23 supports them. Each side presents a
//! bare SubjectPublicKeyInfo holding its Ed25519 identity key, never an X.509 certificate;
//! there is no CA and no host name check. A client accepts exactly one server key (pinned at
//! enrolment); the server accepts a client key when the caller's `allowed` predicate says so
//! (typically: the key is in the current roster).
//!
//! What is enforced:
//! - TLS 1.3 only, with the ring provider passed explicitly (never the process default).
//! - Raw public keys are required in both directions (the certificate-type extensions), and
//!   client authentication is mandatory.
//! - The only signature scheme offered or accepted is Ed25519. The peer's CertificateVerify
//!   signature is verified under the presented key after that key was checked against the
//!   pin, so presenting someone else's key without their secret key fails. TLS 1.2 signature
//!   verification always refuses.
//! - Session resumption and tickets are off in both directions, so every connection runs the
//!   full key check (a key the server stops allowing cannot come back through a ticket).
//! - SNI is not sent; [`server_name`] is a fixed placeholder that no verifier looks at.
//!
//! The private key's PKCS#8 form exists only in a zeroizing buffer while rustls loads it.
//!
//! [RFC 7250]: https://www.rfc-editor.org/rfc/rfc7250

use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{AlwaysResolvesClientRawPublicKeys, Resumption};
use rustls::crypto::{
    verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{AlwaysResolvesServerRawPublicKeys, NoServerSessionStorage};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName,
    PeerMisbehaved, ServerConfig, SignatureScheme,
};

use crate::identity::NodeKey;

/// The placeholder name every connection uses. It is never sent (SNI is off) and never
/// checked: the server is authenticated by its pinned key alone.
const SERVER_NAME: &str = "coffer-server.invalid";

/// The fixed server name used on every connection (no DNS names involved).
pub fn server_name() -> ServerName<'static> {
    // The literal is a valid DNS name (a unit test checks it); the fallback is unreachable
    // and would be just as good, since no verifier looks at the name.
    ServerName::try_from(SERVER_NAME).unwrap_or(ServerName::IpAddress(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
    ))
}

/// Why a TLS configuration could not be built (no secret material in messages).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The identity key could not be put into the PKCS#8 or SubjectPublicKeyInfo form TLS
    /// needs.
    #[error("the identity key could not be encoded for TLS")]
    KeyEncoding,
    /// The TLS library refused the identity key, or its idea of the public key differs from
    /// ours.
    #[error("the TLS library refused the identity key")]
    KeyRejected,
    /// The pinned server key is not a usable Ed25519 public key.
    #[error("the pinned server key is not a valid Ed25519 public key")]
    BadServerKey,
    /// The TLS library refused the configuration (protocol versions or provider).
    #[error("the TLS configuration was refused: {0}")]
    Config(rustls::Error),
}

/// Server side: presents `identity_key`; requires a client raw key for which `allowed` returns
/// true.
///
/// `allowed` runs once per handshake, after the client's key is parsed and before its
/// handshake signature is checked; the connection fails unless that signature also verifies.
pub fn server_config(
    identity_key: &SigningKey,
    allowed: Arc<dyn Fn(&NodeKey) -> bool + Send + Sync>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let certified = certified_key(identity_key)?;
    let verifier = ClientKeyVerifier {
        allowed,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(certified)));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

/// Client side: presents `identity_key`; accepts only a server whose key is exactly
/// `server_key`.
pub fn client_config(
    identity_key: &SigningKey,
    server_key: NodeKey,
) -> Result<Arc<ClientConfig>, TlsError> {
    let pinned = server_key
        .verifying_key()
        .map_err(|_| TlsError::BadServerKey)?;
    if pinned.is_weak() {
        return Err(TlsError::BadServerKey);
    }
    let provider = provider();
    let certified = certified_key(identity_key)?;
    let verifier = ServerKeyVerifier {
        server_key,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(certified)));
    config.resumption = Resumption::disabled();
    config.enable_sni = false;
    config.enable_early_data = false;
    Ok(Arc::new(config))
}

/// The peer's Ed25519 identity key after the handshake (from `peer_certificates()`), if it
/// presented one.
///
/// With the configurations of this module the peer's key has been pinned and its handshake
/// signature verified by the time this returns `Some`.
pub fn peer_node_key(conn: &CommonState) -> Option<NodeKey> {
    match conn.peer_certificates()? {
        [only] => node_key_from_spki(only.as_ref()),
        _ => None,
    }
}

/// The ring provider, explicitly (never the process-wide default).
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The identity key as rustls's signer plus its raw public key (a SubjectPublicKeyInfo in
/// place of a certificate).
fn certified_key(identity_key: &SigningKey) -> Result<Arc<CertifiedKey>, TlsError> {
    let spki = identity_key
        .verifying_key()
        .to_public_key_der()
        .map_err(|_| TlsError::KeyEncoding)?;
    // `SecretDocument` zeroizes its buffer on drop; rustls only borrows it while loading.
    let pkcs8 = identity_key
        .to_pkcs8_der()
        .map_err(|_| TlsError::KeyEncoding)?;
    let signer =
        rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(pkcs8.as_bytes()))
            .map_err(|_| TlsError::KeyRejected)?;
    drop(pkcs8);
    // rustls's `keys_match` expects an X.509 certificate, so compare the SPKIs directly.
    match signer.public_key() {
        Some(theirs) if theirs.as_ref() == spki.as_bytes() => {}
        _ => return Err(TlsError::KeyRejected),
    }
    let raw_key = CertificateDer::from(spki.as_bytes().to_vec());
    Ok(Arc::new(CertifiedKey::new(vec![raw_key], signer)))
}

/// Parses a raw public key: a DER SubjectPublicKeyInfo holding an Ed25519 key, in its one
/// canonical encoding, and not a small-order point.
fn node_key_from_spki(spki: &[u8]) -> Option<NodeKey> {
    let key = VerifyingKey::from_public_key_der(spki).ok()?;
    if key.is_weak() {
        return None;
    }
    let canonical = key.to_public_key_der().ok()?;
    if canonical.as_bytes() != spki {
        return None;
    }
    Some(NodeKey(key.to_bytes()))
}

fn bad_encoding() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
}

fn not_pinned() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("TLS 1.2 is not accepted".into())
}

/// Checks a TLS 1.3 CertificateVerify signature: Ed25519 only, under the presented key.
fn verify_ed25519_tls13(
    message: &[u8],
    raw_key: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(raw_key.as_ref()),
        dss,
        algorithms,
    )
}

/// The client's verifier of the server: exactly one pinned key.
struct ServerKeyVerifier {
    server_key: NodeKey,
    algorithms: WebPkiSupportedAlgorithms,
}

impl core::fmt::Debug for ServerKeyVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeyVerifier")
            .field("server_key", &self.server_key)
            .finish_non_exhaustive()
    }
}

impl ServerKeyVerifier {
    fn check_pinned(&self, raw_key: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let key = node_key_from_spki(raw_key.as_ref()).ok_or_else(bad_encoding)?;
        if key == self.server_key {
            Ok(())
        } else {
            Err(not_pinned())
        }
    }
}

impl ServerCertVerifier for ServerKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(bad_encoding());
        }
        self.check_pinned(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // rustls passes the key `verify_server_cert` accepted; checking again costs nothing.
        self.check_pinned(cert)?;
        verify_ed25519_tls13(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// The server's verifier of clients: any key the caller's predicate allows.
struct ClientKeyVerifier {
    allowed: Arc<dyn Fn(&NodeKey) -> bool + Send + Sync>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl core::fmt::Debug for ClientKeyVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientKeyVerifier").finish_non_exhaustive()
    }
}

impl ClientCertVerifier for ClientKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(bad_encoding());
        }
        let key = node_key_from_spki(end_entity.as_ref()).ok_or_else(bad_encoding)?;
        if (self.allowed)(&key) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(not_pinned())
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // `cert` is the key `verify_client_cert` accepted (rustls passes the same one); the
        // predicate is not asked twice, but the encoding is checked again.
        node_key_from_spki(cert.as_ref()).ok_or_else(bad_encoding)?;
        verify_ed25519_tls13(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::identity::Identity;
    use rustls::client::ResolvesClientCert;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// The server's view of one connection: the client's key and what it read, or the error.
    type ServerOutcome = Result<(Option<NodeKey>, Vec<u8>), std::io::Error>;

    /// Runs one server accept on 127.0.0.1: handshake, read 4 bytes, answer "pong".
    async fn serve_once(
        config: Arc<ServerConfig>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<ServerOutcome>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
            let peer = peer_node_key(tls.get_ref().1);
            let mut buf = vec![0u8; 4];
            tls.read_exact(&mut buf).await?;
            tls.write_all(b"pong").await?;
            tls.shutdown().await?;
            Ok((peer, buf))
        });
        (addr, handle)
    }

    /// Dials `addr`, sends "ping" and reads the 4-byte answer.
    async fn dial(
        addr: std::net::SocketAddr,
        config: Arc<ClientConfig>,
    ) -> Result<(Option<NodeKey>, Vec<u8>), std::io::Error> {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = TlsConnector::from(config)
            .connect(server_name(), tcp)
            .await?;
        let peer = peer_node_key(tls.get_ref().1);
        tls.write_all(b"ping").await?;
        let mut buf = vec![0u8; 4];
        tls.read_exact(&mut buf).await?;
        Ok((peer, buf))
    }

    fn allow_only(key: NodeKey) -> Arc<dyn Fn(&NodeKey) -> bool + Send + Sync> {
        Arc::new(move |k: &NodeKey| *k == key)
    }

    #[tokio::test]
    async fn handshake_pins_both_keys_and_carries_data() {
        let server = Identity::generate("x");
        let client = Identity::generate("x");
        let (addr, handle) =
            serve_once(server_config(server.signing_key(), allow_only(client.node_key())).unwrap())
                .await;
        let (server_seen_by_client, answer) = dial(
            addr,
            client_config(client.signing_key(), server.node_key()).unwrap(),
        )
        .await
        .unwrap();
        let (client_seen_by_server, request) = handle.await.unwrap().unwrap();
        assert_eq!(answer, b"pong");
        assert_eq!(request, b"ping");
        assert_eq!(server_seen_by_client, Some(server.node_key()));
        assert_eq!(client_seen_by_server, Some(client.node_key()));
    }

    #[tokio::test]
    async fn client_refuses_a_server_with_another_key() {
        let server = Identity::generate("x");
        let client = Identity::generate("x");
        let expected = Identity::generate("x");
        let (addr, handle) =
            serve_once(server_config(server.signing_key(), allow_only(client.node_key())).unwrap())
                .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err =
            TlsConnector::from(client_config(client.signing_key(), expected.node_key()).unwrap())
                .connect(server_name(), tcp)
                .await
                .unwrap_err();
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            inner,
            Some(&rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure
            ))
        );
        assert!(handle.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn client_refuses_a_server_presenting_the_pinned_key_without_its_secret() {
        // The impostor presents the pinned server's raw key but signs with its own key.
        let real = Identity::generate("x");
        let impostor = Identity::generate("x");
        let client = Identity::generate("x");
        let provider = provider();
        let good = certified_key(real.signing_key()).unwrap();
        let forged_signer = certified_key(impostor.signing_key()).unwrap().key.clone();
        let forged = Arc::new(CertifiedKey::new(good.cert.clone(), forged_signer));
        let config = ServerConfig::builder_with_provider(Arc::new(provider.clone()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(Arc::new(ClientKeyVerifier {
                allowed: allow_only(client.node_key()),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(forged)));
        let (addr, handle) = serve_once(Arc::new(config)).await;
        let err = dial(
            addr,
            client_config(client.signing_key(), real.node_key()).unwrap(),
        )
        .await
        .unwrap_err();
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            inner,
            Some(&rustls::Error::InvalidCertificate(
                CertificateError::BadSignature
            )),
            "{err:?}"
        );
        assert!(handle.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn server_refuses_a_client_it_does_not_allow() {
        let server = Identity::generate("x");
        let client = Identity::generate("x");
        let other = Identity::generate("x");
        let (addr, handle) =
            serve_once(server_config(server.signing_key(), allow_only(other.node_key())).unwrap())
                .await;
        // In TLS 1.3 the client may finish its half of the handshake before the server
        // checks its key; it then sees the server's alert (or EOF) on its first read.
        let client_result = dial(
            addr,
            client_config(client.signing_key(), server.node_key()).unwrap(),
        )
        .await;
        assert!(client_result.is_err(), "{client_result:?}");
        let server_err = handle.await.unwrap().unwrap_err();
        let inner = server_err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            inner,
            Some(&rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure
            ))
        );
    }

    /// A client configuration pinned to `server_key` that presents no key of its own.
    fn anonymous_client(
        server_key: NodeKey,
        resolver: Option<Arc<dyn ResolvesClientCert>>,
    ) -> Arc<ClientConfig> {
        let provider = provider();
        let verifier = Arc::new(ServerKeyVerifier {
            server_key,
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match resolver {
            Some(resolver) => builder.with_client_cert_resolver(resolver),
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = false;
        Arc::new(config)
    }

    /// Offers raw public keys for client authentication but has none to present.
    #[derive(Debug)]
    struct NoRawKey;

    impl ResolvesClientCert for NoRawKey {
        fn resolve(
            &self,
            _root_hint_subjects: &[&[u8]],
            _sigschemes: &[SignatureScheme],
        ) -> Option<Arc<CertifiedKey>> {
            None
        }

        fn only_raw_public_keys(&self) -> bool {
            true
        }

        fn has_certs(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn server_refuses_a_client_without_a_key() {
        let server = Identity::generate("x");
        let allow_all: Arc<dyn Fn(&NodeKey) -> bool + Send + Sync> = Arc::new(|_: &NodeKey| true);
        let config = server_config(server.signing_key(), allow_all).unwrap();

        // A plain client without client authentication (it does not even offer raw keys).
        let (addr, handle) = serve_once(config.clone()).await;
        let client_result = dial(addr, anonymous_client(server.node_key(), None)).await;
        assert!(client_result.is_err(), "{client_result:?}");
        let server_err = handle.await.unwrap().unwrap_err();
        let inner = server_err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            inner,
            Some(&rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::IncorrectCertificateTypeExtension
            ))
        );

        // A client that negotiates raw keys and then sends an empty Certificate message.
        let (addr, handle) = serve_once(config).await;
        let client_result = dial(
            addr,
            anonymous_client(server.node_key(), Some(Arc::new(NoRawKey))),
        )
        .await;
        assert!(client_result.is_err(), "{client_result:?}");
        let server_err = handle.await.unwrap().unwrap_err();
        let inner = server_err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(inner, Some(&rustls::Error::NoCertificatesPresented));
    }

    #[test]
    fn server_name_is_the_fixed_dns_placeholder() {
        assert_eq!(
            server_name(),
            ServerName::DnsName(rustls::pki_types::DnsName::try_from(SERVER_NAME).unwrap())
        );
    }

    #[test]
    fn raw_keys_parse_strictly_and_tls12_is_refused() {
        let id = Identity::generate("x");
        let spki = id
            .signing_key()
            .verifying_key()
            .to_public_key_der()
            .unwrap();
        assert_eq!(node_key_from_spki(spki.as_bytes()), Some(id.node_key()));
        let mut trailing = spki.as_bytes().to_vec();
        trailing.push(0);
        assert_eq!(node_key_from_spki(&trailing), None);
        assert_eq!(node_key_from_spki(&spki.as_bytes()[..40]), None);
        // The identity point (small order) is refused.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let weak_spki = VerifyingKey::from_bytes(&weak)
            .unwrap()
            .to_public_key_der()
            .unwrap();
        assert_eq!(node_key_from_spki(weak_spki.as_bytes()), None);
        assert_eq!(
            client_config(id.signing_key(), NodeKey(weak)).unwrap_err(),
            TlsError::BadServerKey
        );

        let verifier = ServerKeyVerifier {
            server_key: id.node_key(),
            algorithms: provider().signature_verification_algorithms,
        };
        assert_eq!(
            verifier.supported_verify_schemes(),
            vec![SignatureScheme::ED25519]
        );
        assert!(verifier.requires_raw_public_keys());
        // No public constructor for `DigitallySignedStruct`: decode one (Ed25519, 64 bytes).
        let mut encoded = vec![0x08, 0x07, 0x00, 0x40];
        encoded.extend_from_slice(&id.sign(b"m"));
        let dss = decode_dss(&encoded);
        let raw = CertificateDer::from(spki.as_bytes().to_vec());
        assert!(verifier.verify_tls12_signature(b"m", &raw, &dss).is_err());
        // TLS 1.3: the signature must verify under the pinned key, over this message.
        assert!(verifier.verify_tls13_signature(b"m", &raw, &dss).is_ok());
        assert!(verifier.verify_tls13_signature(b"M", &raw, &dss).is_err());
        let other = Identity::generate("x");
        let other_spki = other
            .signing_key()
            .verifying_key()
            .to_public_key_der()
            .unwrap();
        let other_raw = CertificateDer::from(other_spki.as_bytes().to_vec());
        assert!(verifier
            .verify_tls13_signature(b"m", &other_raw, &dss)
            .is_err());
        let other_pinned = ServerKeyVerifier {
            server_key: other.node_key(),
            algorithms: provider().signature_verification_algorithms,
        };
        assert!(other_pinned
            .verify_tls13_signature(b"m", &other_raw, &dss)
            .is_err());
    }

    fn decode_dss(bytes: &[u8]) -> DigitallySignedStruct {
        use rustls::internal::msgs::codec::{Codec, Reader};
        DigitallySignedStruct::read(&mut Reader::init(bytes)).unwrap()
    }
}
