//! How a client sends its orders (signed REST over the bare HTTP/1.1 client or reqwest, or
//! an authenticated order-entry WebSocket), and the market-data subscribers that time trades.

use super::*;

/// An order-entry WebSocket, authenticated as one account.
pub(crate) struct WsOrders {
    pub(crate) ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub(crate) next_id: u64,
}

impl WsOrders {
    pub(crate) async fn open(base: &str, key: &Credentials) -> anyhow::Result<Self> {
        use futures_util::SinkExt;
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            .to_string();
        let signature = exchange_client::signing::sign(
            key.secret.as_bytes(),
            &exchange_client::signing::payload("GET", "/ws", &format!("timestamp={ts}"), b""),
        );
        let auth =
            json!({"op": "auth", "key": key.key_id, "timestamp": ts, "signature": signature});
        ws.send(WsMessage::text(auth.to_string())).await?;
        let mut s = Self { ws, next_id: 0 };
        let answer = s.answer(None).await?;
        if answer["type"] != "authenticated" {
            bail!("WebSocket auth refused: {answer}");
        }
        Ok(s)
    }

    /// The next answer (to request `id`, when given), skipping anything else.
    pub(crate) async fn answer(&mut self, id: Option<u64>) -> anyhow::Result<Value> {
        use futures_util::StreamExt;
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    // An error the server could not tie to a request (a refused message: rate
                    // limit, size) answers the one request in flight.
                    let untied_error = v["type"] == "error" && v["id"].is_null();
                    if id.is_none() || v["id"].as_u64() == id || untied_error {
                        return Ok(v);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the WebSocket closed"),
            }
        }
    }

    /// Places an order; the answer as (HTTP-like status, report or error).
    pub(crate) async fn place(&mut self, body: &Value) -> anyhow::Result<(u16, Value)> {
        use futures_util::SinkExt;
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"op": "order.place", "id": id, "order": body});
        self.ws.send(WsMessage::text(msg.to_string())).await?;
        let answer = self.answer(Some(id)).await?;
        match answer["type"].as_str() {
            Some("order.place") => Ok((
                answer["status"].as_u64().unwrap_or(0) as u16,
                answer["report"].clone(),
            )),
            _ => Ok((if answer["code"] == 2201 { 429 } else { 400 }, answer)),
        }
    }
}

/// A client's REST connection and the keys it signs with: HTTP/1.1 over the bare client
/// ([`http1`]), HTTP/2 over reqwest.
pub(crate) struct Rest {
    pub(crate) signers: Vec<Signer>,
    pub(crate) http1: Option<http1::Http1>,
}

impl Rest {
    /// Sends a request signed by `trader`'s key; the status and the JSON answer.
    pub(crate) async fn send(
        &mut self,
        trader: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_reading(trader, method, path, body, true).await
    }

    /// [`Rest::send`], parsing the answer only when `read` (otherwise it is `Null`): the load
    /// generator shares the exchange's cores, and an execution report parsed into a `Value`
    /// costs more than signing the order.
    pub(crate) async fn send_reading(
        &mut self,
        trader: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
        read: bool,
    ) -> anyhow::Result<(u16, Value)> {
        let signer = &self.signers[trader];
        let Some(http1) = &mut self.http1 else {
            return Ok(signer.send(method, path, body).await?);
        };
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let target = signer.signed_target(method.as_str(), path, &body);
        let mut headers = vec![(exchange_client::signing::KEY_HEADER, signer.key_id())];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let (status, answer) = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http1.send(method.as_str(), &target, &headers, &body),
        )
        .await??;
        let json = if answer.is_empty() || !read {
            Value::Null
        } else {
            serde_json::from_slice(&answer)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()))
        };
        Ok((status, json))
    }
}

/// How long a request may take before it counts as timed out.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a client places its orders.
pub(crate) enum Transport {
    Rest(Rest),
    /// One socket, so one account for all of the client's orders.
    Ws(Box<WsOrders>, usize),
}

/// A market-data subscriber: trades of every symbol, acceptance to receipt while measuring.
pub(crate) async fn md_subscriber(
    o: Arc<Options>,
    id: usize,
    measure_from: Instant,
    stop: Instant,
) -> anyhow::Result<Histogram<u64>> {
    use futures_util::{SinkExt, StreamExt};
    let base = &o.urls[id % o.urls.len()];
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let channels: Vec<String> = o
        .symbols
        .iter()
        .map(|(s, _)| format!("trades.{s}"))
        .collect();
    ws.send(WsMessage::text(
        json!({"op": "subscribe", "channels": channels}).to_string(),
    ))
    .await?;
    let mut h = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    while let Ok(Some(msg)) = tokio::time::timeout_at(stop.into(), ws.next()).await {
        if let WsMessage::Text(t) = msg?
            && Instant::now() >= measure_from
        {
            let now = fanout::now_us();
            for at in fanout::accepted_times(&t) {
                h.saturating_record(now.saturating_sub(at).max(1));
            }
        }
    }
    Ok(h)
}
