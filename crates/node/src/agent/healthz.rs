//! The node's HTTPS endpoint: `/healthz`, served with the serving certificate as it rotates.

use std::sync::Arc;
use std::time::Duration;

use kubeboot_client::CertSource;

pub(crate) async fn serve_healthz(listener: tokio::net::TcpListener, serving: CertSource) {
    let Ok(cfg) = serving.server_config() else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let (code, body) = if req.uri().path() == "/healthz" {
                        (200, "ok")
                    } else {
                        (404, "404 page not found\n")
                    };
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .status(code)
                            .header("Content-Type", "text/plain; charset=utf-8")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                body.as_bytes(),
                            )))
                            .expect("static response"),
                    )
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}
