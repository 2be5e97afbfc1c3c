//! A bare HTTP/1.1 keep-alive client for the load generator: one request in flight per
//! connection, each written with one `write` and its answer read into a buffer that is reused.
//!
//! The exchange sees what any HTTP/1.1 client sends. The load generator runs on the exchange's
//! cores, and a full client (reqwest: URL parsing, header maps, a connection pool, a task per
//! connection) spent about 30 µs of CPU per order here, a quarter of the machine at the rates
//! measured; this one spends a fraction of that, as wrk does.

use anyhow::{Context, bail};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection to `host:port`, opened on first use and again after a failure.
pub struct Http1 {
    addr: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    buf: Vec<u8>,
}

/// What the head of an answer says about its body.
struct Head {
    status: u16,
    len: usize,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Http1 {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let addr = base
            .strip_prefix("http://")
            .with_context(|| format!("{base}: the raw HTTP/1.1 client takes http://host:port"))?
            .trim_end_matches('/');
        if addr.contains('/') {
            bail!("{base}: the raw HTTP/1.1 client takes no path in the base URL");
        }
        Ok(Self {
            addr: addr.to_owned(),
            stream: None,
            request: Vec::with_capacity(1024),
            buf: Vec::with_capacity(8192),
        })
    }

    /// Sends one request (`target` is the path with its query) and returns the status and the
    /// body. The connection is put back only after a whole answer: after any failure the next
    /// request opens a new one.
    pub async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                stream
            }
        };
        self.request.clear();
        write!(
            self.request,
            "{method} {target} HTTP/1.1\r\nhost: {}\r\n",
            self.addr
        )?;
        for (name, value) in headers {
            write!(self.request, "{name}: {value}\r\n")?;
        }
        write!(self.request, "content-length: {}\r\n\r\n", body.len())?;
        self.request.extend_from_slice(body);
        stream.write_all(&self.request).await?;

        self.buf.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            read_more(&mut stream, &mut self.buf).await?;
        };
        let body = if head.chunked {
            let mut body = Vec::new();
            let mut at = head.len;
            loop {
                match httparse::parse_chunk_size(&self.buf[at..]) {
                    Ok(httparse::Status::Complete((size_len, 0))) => {
                        // The last chunk, then the (empty) trailer's CRLF.
                        let end = at + size_len + 2;
                        while self.buf.len() < end {
                            read_more(&mut stream, &mut self.buf).await?;
                        }
                        break body;
                    }
                    Ok(httparse::Status::Complete((size_len, size))) => {
                        let start = at + size_len;
                        let end = start + usize::try_from(size)? + 2;
                        while self.buf.len() < end {
                            read_more(&mut stream, &mut self.buf).await?;
                        }
                        body.extend_from_slice(&self.buf[start..end - 2]);
                        at = end;
                    }
                    Ok(httparse::Status::Partial) => read_more(&mut stream, &mut self.buf).await?,
                    Err(_) => bail!("a malformed chunk size"),
                }
            }
        } else {
            let length = head.length.unwrap_or(0);
            while self.buf.len() < head.len + length {
                read_more(&mut stream, &mut self.buf).await?;
            }
            self.buf[head.len..head.len + length].to_vec()
        };
        if !head.close {
            self.stream = Some(stream);
        }
        Ok((head.status, body))
    }
}

/// Reads what has arrived onto the end of `buf`; a closed connection is an error.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        bail!("the server closed the connection");
    }
    Ok(())
}

/// The head of the answer in `buf`, once it is all there.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(buf)? else {
        return Ok(None);
    };
    let mut head = Head {
        status: response.code.context("an answer without a status")?,
        len,
        length: None,
        chunked: false,
        close: false,
    };
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or_default();
        if h.name.eq_ignore_ascii_case("content-length") {
            head.length = Some(value.trim().parse().context("a bad content-length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_once_complete() {
        assert!(
            parse_head(b"HTTP/1.1 201 Created\r\ncontent-le")
                .unwrap()
                .is_none()
        );
        let h = parse_head(b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\n\r\n{\"a\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.length, h.chunked, h.close),
            (201, Some(12), false, false)
        );
        assert_eq!(h.len, 44);
        let h = parse_head(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.status, h.chunked, h.close), (400, true, true));
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    }

    /// A server that answers two requests on one connection, the second chunked.
    #[tokio::test]
    async fn answers_come_back_whole_over_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            for answer in [
                &b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{\"n\":1}"[..],
                &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"n\r\n4\r\n\":2}\r\n0\r\n\r\n"[..],
            ] {
                let n = s.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                // The answer in two pieces, as TCP may deliver it.
                s.write_all(&answer[..10]).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                s.write_all(&answer[10..]).await.unwrap();
            }
            seen
        });
        let mut c = Http1::new(&format!("http://{addr}")).unwrap();
        let (status, body) = c
            .send("POST", "/orders?x=1", &[("x-api-key", "k")], b"{}")
            .await
            .unwrap();
        assert_eq!((status, body.as_slice()), (201, &b"{\"n\":1}"[..]));
        let (status, body) = c.send("GET", "/orders/7", &[], b"").await.unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"{\"n\":2}"[..]));
        let seen = server.await.unwrap();
        assert!(
            seen[0].starts_with("POST /orders?x=1 HTTP/1.1\r\n")
                && seen[0].contains("x-api-key: k\r\n")
                && seen[0].ends_with("content-length: 2\r\n\r\n{}"),
            "{:?}",
            seen[0]
        );
        assert!(seen[1].starts_with("GET /orders/7 HTTP/1.1\r\n"));
    }
}
