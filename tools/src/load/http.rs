//! The load's own HTTP/1.1 client for a plain `http://` API: keep-alive connections, each
//! driven inside the request that uses it (no connection task, no pool lock held across a
//! request), so the load generator spends as little as it can of the CPU it shares with the
//! server and the database when they run on one machine.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A pooled connection is dropped after this long unused, well inside the server's
/// keep-alive limit (`--header-read-timeout`, 15 s by default).
const IDLE_LIMIT: Duration = Duration::from_secs(5);

/// How long one request may take, as the typed client allows.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Driver = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// One open connection: the request half and the connection state machine hyper drives.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    driver: Driver,
    idle_since: Instant,
}

impl Conn {
    /// Whether the server has closed it while it sat in the pool (polls the driver once,
    /// which reads the end of the stream if it came).
    async fn closed(&mut self) -> bool {
        let driver = &mut self.driver;
        std::future::poll_fn(|cx| Poll::Ready(driver.as_mut().poll(cx).is_ready())).await
            || self.send.is_closed()
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let Conn { send, driver, .. } = self;
        let exchange = async move {
            send.ready().await?;
            let response = send.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        tokio::select! {
            biased;
            answer = exchange => Ok(answer?),
            closed = driver.as_mut() => Err(anyhow::anyhow!("the connection closed mid-request: {closed:?}")),
        }
    }
}

/// Keep-alive HTTP/1.1 connections to one API; cheap to clone.
#[derive(Clone)]
pub struct Http1Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// `host:port` to connect to, and the `Host` header.
    authority: String,
    host: HeaderValue,
    /// The base URL's path, without a trailing slash.
    prefix: String,
    authorization: Option<HeaderValue>,
    idle: Mutex<Vec<Conn>>,
}

impl Http1Client {
    /// A client of the API at `base` when it is a plain `http://` URL; `None` otherwise.
    pub fn new(base: &str, token: Option<&str>) -> anyhow::Result<Option<Self>> {
        let Some(rest) = base.strip_prefix("http://") else {
            return Ok(None);
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!authority.is_empty(), "no host in {base}");
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let authorization = token
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .context("the API token is not a valid header value")?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                host: HeaderValue::from_str(&authority).context("the API's host")?,
                authority,
                prefix: match path.trim_end_matches('/') {
                    "" => String::new(),
                    path => format!("/{path}"),
                },
                authorization,
                idle: Mutex::new(Vec::new()),
            }),
        }))
    }

    /// `POST {base}{path}` with a JSON body; the status and the body, or an error when no
    /// complete answer came.
    pub async fn post_json(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.inner.prefix))
            .header(HOST, self.inner.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.inner.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let request = builder.body(Full::new(Bytes::from(body)))?;
        let mut conn = match self.pooled().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(request))
            .await
            .map_err(|_| anyhow::anyhow!("no answer in {REQUEST_TIMEOUT:?}"))??;
        conn.idle_since = Instant::now();
        self.inner.idle.lock().expect("never poisoned").push(conn);
        Ok(answer)
    }

    /// A pooled connection the server has not closed and that has not sat too long.
    async fn pooled(&self) -> Option<Conn> {
        loop {
            let mut conn = self.inner.idle.lock().expect("never poisoned").pop()?;
            if conn.idle_since.elapsed() < IDLE_LIMIT && !conn.closed().await {
                return Some(conn);
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(&self.inner.authority)
            .await
            .with_context(|| format!("connecting to {}", self.inner.authority))?;
        stream.set_nodelay(true)?;
        let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Conn {
            send,
            driver: Box::pin(connection),
            idle_since: Instant::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(base: &str) -> Option<(String, String)> {
        Http1Client::new(base, None)
            .unwrap()
            .map(|c| (c.inner.authority.clone(), c.inner.prefix.clone()))
    }

    #[test]
    fn a_base_url_gives_the_address_and_the_path_prefix() {
        let p = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(parts("http://127.0.0.1:8080"), p("127.0.0.1:8080", ""));
        assert_eq!(parts("http://127.0.0.1:8080/"), p("127.0.0.1:8080", ""));
        assert_eq!(parts("http://api.internal"), p("api.internal:80", ""));
        assert_eq!(parts("http://[::1]:9"), p("[::1]:9", ""));
        assert_eq!(parts("http://[::1]"), p("[::1]:80", ""));
        assert_eq!(parts("http://h:1/sync/watch/"), p("h:1", "/sync/watch"));
        assert_eq!(parts("https://h:1"), None, "TLS is the typed client's");
        assert!(Http1Client::new("http://", None).is_err());
        assert!(Http1Client::new("http://h:1", Some("bad\ntoken")).is_err());
    }
}
