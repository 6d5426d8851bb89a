//! TLS: the development CA and server certificate made at first start, and the rustls
//! configuration.
//!
//! `<keys-dir>/tls/` holds `ca.crt`, `ca.key`, `server.crt` and `server.key`. They are made
//! once and reused, so clients that trust `ca.crt` keep working across restarts.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// Where the development TLS files live.
#[derive(Debug, Clone)]
pub struct DevTls {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl DevTls {
    pub fn in_dir(keys_dir: &Path) -> DevTls {
        let dir = keys_dir.join("tls");
        DevTls { ca_cert: dir.join("ca.crt"), server_cert: dir.join("server.crt"), server_key: dir.join("server.key") }
    }

    /// Makes the CA and the server certificate unless they exist. `extra_names` are added
    /// to the server certificate's names (e.g. a non-loopback listen address).
    pub fn ensure(&self, extra_names: &[String]) -> anyhow::Result<()> {
        if self.ca_cert.exists() && self.server_cert.exists() && self.server_key.exists() {
            // Names asked for since the certificate was made (say a Kubernetes service
            // name) get a new server certificate from the same CA; clients keep trusting it.
            if self.server_cert_names()?.is_some_and(|names| extra_names.iter().all(|n| names.contains(n))) {
                return Ok(());
            }
        }
        let dir = self.ca_cert.parent().context("TLS directory")?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key_path = dir.join("ca.key");

        let issuer = if self.ca_cert.exists() && ca_key_path.exists() {
            let key = KeyPair::from_pem(&fs::read_to_string(&ca_key_path)?).context("reading the CA key")?;
            Issuer::from_ca_cert_pem(&fs::read_to_string(&self.ca_cert)?, key).context("reading the CA certificate")?
        } else {
            let key = KeyPair::generate().context("generating the CA key")?;
            let mut params = CertificateParams::default();
            params.distinguished_name = name("Notarius development CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
            params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
            let cert = params.self_signed(&key).context("signing the CA certificate")?;
            write_file(&self.ca_cert, cert.pem().as_bytes(), false)?;
            write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
            Issuer::new(params, key)
        };

        let server_key = KeyPair::generate().context("generating the server key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("Notarius server");
        params.subject_alt_names = server_names(extra_names);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(825);
        let cert = params.signed_by(&server_key, &issuer).context("signing the server certificate")?;
        write_file(&self.server_cert, cert.pem().as_bytes(), false)?;
        write_file(&self.server_key, server_key.serialize_pem().as_bytes(), true)?;
        Ok(())
    }
}

impl DevTls {
    /// The DNS names and IP addresses of the current server certificate, or None when it
    /// cannot be read (it is then made again).
    fn server_cert_names(&self) -> anyhow::Result<Option<Vec<String>>> {
        let pem = fs::read(&self.server_cert).with_context(|| format!("reading {}", self.server_cert.display()))?;
        let Ok(blocks) = crate::tuf::keys::parse_pem_certificates(&pem) else { return Ok(None) };
        let Some(der) = blocks.first() else { return Ok(None) };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Ok(None) };
        let Ok(Some(san)) = cert.subject_alternative_name() else { return Ok(None) };
        let names = san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(Some(names))
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// localhost, the loopback addresses, this machine's host name, and `extra` names.
fn server_names(extra: &[String]) -> Vec<SanType> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = host_name() {
        names.push(host);
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.try_into().ok().map(SanType::DnsName),
        })
        .collect()
}

pub fn host_name() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}
