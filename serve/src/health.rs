//! `serve --health-check`: one GET of `/v2/health/live` over plain TCP, or over TLS when the
//! server is configured for it (`--tls-cert`), for container health checks in images that carry
//! no HTTP client.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Succeeds when the server at `addr` answers the liveness endpoint with 200. A wildcard
/// address (`0.0.0.0`, `::`), which a server listens on but a client cannot reach, means this
/// machine.
pub fn check(addr: SocketAddr, timeout: Duration, tls: bool) -> Result<(), String> {
    let mut target = addr;
    if addr.ip().is_unspecified() {
        target.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request =
        format!("GET /v2/health/live HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let mut exchange = |stream: &mut dyn ReadWrite| {
        stream.write_all(request.as_bytes())?;
        stream.read_to_end(&mut answer)
    };
    let done = if tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OwnServer(provider)))
            .with_no_client_auth();
        let name = ServerName::IpAddress(target.ip().into());
        let connection =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        exchange(&mut rustls::StreamOwned::new(connection, stream))
    } else {
        exchange(&mut stream)
    };
    done.map_err(|e| format!("{target}: {e}"))?;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(status) => Err(format!("{target} answered {status}")),
        None => Err(format!("{target} gave no HTTP answer")),
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Accepts the server's certificate without checking whom it names or who issued it: the probe
/// connects to this server's own address and asks whether it is live, not who it is. The
/// handshake signatures are still verified.
#[derive(Debug)]
struct OwnServer(Arc<CryptoProvider>);

impl ServerCertVerifier for OwnServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
