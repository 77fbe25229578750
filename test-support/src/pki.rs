//! A throw-away PKI for tests: one CA, and server or
//! client certificates it signs, written as PEM files into a directory the
//! test owns.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA whose certificate is `ca.pem` in `dir`.
pub struct TestPki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").field("dir", &self.dir).finish()
    }
}

/// A certificate and key written by [`TestPki::issue`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl TestPki {
    /// Creates a CA named `name` and writes `<dir>/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> TestPki {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key"))
            .expect("self-signed CA");
        std::fs::write(dir.join(format!("{name}.pem")), ca.pem()).expect("write CA");
        TestPki {
            dir: dir.join(format!("{name}.pem")),
            ca,
        }
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Issues a certificate for `sans` (DNS names or IP addresses), usable
    /// by servers and clients, as `<file>.pem` and `<file>-key.pem` next to
    /// the CA.
    pub fn issue(&self, file: &str, sans: &[&str]) -> Issued {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("certificate parameters");
        p.distinguished_name
            .push(DnType::CommonName, sans.first().copied().unwrap_or(file));
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.ca).expect("sign");
        let dir = self.dir.parent().expect("CA file has a directory");
        let out = Issued {
            cert: dir.join(format!("{file}.pem")),
            key: dir.join(format!("{file}-key.pem")),
        };
        std::fs::write(&out.cert, cert.pem()).expect("write certificate");
        std::fs::write(&out.key, key.serialize_pem()).expect("write key");
        out
    }
}
