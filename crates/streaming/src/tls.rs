//! TLS for the streaming endpoint.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

use crate::config::TlsConfig;
use crate::error::StreamingError;

fn tls_error(what: &'static str, path: &Path, reason: impl ToString) -> StreamingError {
    StreamingError::Tls {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads the PEM certificate chain and key into an acceptor offering HTTP/1.1.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, StreamingError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|e| tls_error("certificate", &config.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error("certificate", &config.cert, e))?;
    if certs.is_empty() {
        return Err(tls_error(
            "certificate",
            &config.cert,
            "no certificate in file",
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(&config.key).map_err(|e| tls_error("key", &config.key, e))?;
    let mut server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("certificate", &config.cert, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("key", &config.key, e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
