//! The server on TLS: a self-signed certificate made with openssl, checked by a rustls client.

// Integration tests: a panic is how they fail, and they may wait on threads of their own.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
mod common;

use std::process::Command;
use std::sync::Arc;

use common::start_server;
use longshore_streaming::{
    ExecRequest, StreamingConfig, StreamingError, StreamingServer, TlsConfig,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn self_signed(dir: &std::path::Path) -> TlsConfig {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=longshore-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-days", "1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    TlsConfig { cert, key }
}

#[tokio::test]
async fn serves_https_urls_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = self_signed(dir.path());
    let cert_path = tls.cert.clone();
    let server = start_server(StreamingConfig {
        tls: Some(tls),
        ..Default::default()
    })
    .await;
    let req = ExecRequest {
        container_id: "c".into(),
        cmd: vec!["true".into()],
        tty: false,
        stdin: false,
        stdout: true,
        stderr: false,
    };
    let url = server.exec_url(req).unwrap();
    assert!(
        url.starts_with(&format!("https://{}/exec/", server.local_addr())),
        "{url}"
    );

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&cert_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /exec/not-a-token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tls.read_to_end(&mut resp).await.unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 404 Not Found\r\n"), "{resp}");
    assert!(resp.ends_with("404 page not found\n"), "{resp}");
}

#[tokio::test]
async fn missing_tls_files_fail_start() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsConfig {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let backend = Arc::new(common::HostBackend {
        main_processes: Default::default(),
    });
    let config = StreamingConfig {
        tls: Some(tls),
        ..Default::default()
    };
    match StreamingServer::start(config, backend).await {
        Err(StreamingError::Tls {
            what: "certificate",
            ..
        }) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started without a certificate"),
    }
}
