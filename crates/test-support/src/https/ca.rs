//! A certificate authority made for one test, and the server certificate it issued.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig, tls_server_config};

/// A certificate authority generated for one test (ECDSA P-256), and a server certificate it
/// issued for `localhost`, `127.0.0.1` and `::1`.
///
/// Nothing trusts it but what the test tells to: [`TestCa::client`], or a PEM file from
/// [`TestCa::write_certificate`].
///
/// ```
/// let ca = shadowcat_test_support::TestCa::new();
/// assert!(ca.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
pub struct TestCa {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    server_der: CertificateDer<'static>,
    server_pem: String,
    server_key_pkcs8: Vec<u8>,
    server_key_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A new authority and server certificate.
    ///
    /// # Panics
    ///
    /// When a key or certificate cannot be generated (the crypto library failed).
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("generating the CA's key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Shadowcat test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signing the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("generating the server's key");
        let mut server_params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("server certificate parameters");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("issuing the server certificate");

        Self {
            ca_der: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
            server_der: server_cert.der().clone(),
            server_pem: server_cert.pem(),
            server_key_pkcs8: server_key.serialize_der(),
            server_key_pem: server_key.serialize_pem(),
        }
    }

    /// The authority's certificate, to trust.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The authority's certificate in PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the authority's certificate to `dir/ca.pem` and returns the path.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn write_certificate(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("writing ca.pem");
        path
    }

    /// Writes the server's certificate chain and private key to `dir/server.pem` and
    /// `dir/server-key.pem`, and returns both paths.
    ///
    /// # Panics
    ///
    /// When a file cannot be written.
    pub fn write_server_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let chain = dir.join("server.pem");
        let key = dir.join("server-key.pem");
        std::fs::write(&chain, format!("{}{}", self.server_pem, self.ca_pem))
            .expect("writing server.pem");
        std::fs::write(&key, &self.server_key_pem).expect("writing server-key.pem");
        (chain, key)
    }

    /// A rustls server configuration presenting the server certificate (ALPN `h2` and
    /// `http/1.1`).
    ///
    /// # Panics
    ///
    /// When rustls refuses the generated key.
    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_pkcs8.clone()));
        tls_server_config(vec![self.server_der.clone(), self.ca_der.clone()], key)
            .expect("a server TLS configuration")
    }

    /// An HTTP client that trusts this authority (and the usual public roots).
    ///
    /// # Panics
    ///
    /// When the client cannot be built.
    pub fn client(&self) -> HttpClient {
        let config = HttpClientConfig::default().with_extra_roots(vec![self.certificate()]);
        HttpClient::new(&config).expect("an HTTP client trusting the test CA")
    }
}
