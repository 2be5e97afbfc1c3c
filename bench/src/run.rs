//! The run: many clients placing orders closed or open loop, each answer timed, then every
//! acknowledged order read back when verifying.

use super::*;

/// An order as acknowledged, kept for verification.
pub(crate) struct Ack {
    /// Index of the account (and key) that placed it.
    pub(crate) trader: usize,
    pub(crate) request: Value,
    pub(crate) response: Value,
}

pub(crate) struct Tally {
    pub(crate) latency: Histogram<u64>,
    pub(crate) outcomes: BTreeMap<String, u64>,
    pub(crate) acks: Vec<Ack>,
}

pub(crate) async fn client(
    o: Arc<Options>,
    keys: Arc<Vec<Credentials>>,
    id: usize,
    start: Instant,
    stop: Instant,
    done: Arc<AtomicU64>,
) -> anyhow::Result<Tally> {
    let base = &o.urls[id % o.urls.len()];
    // One connection per client, shared by the keys it signs with.
    let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if o.http2 {
        http = http.http2_prior_knowledge();
    }
    let mut transport = if o.websocket {
        let trader = id % keys.len();
        Transport::Ws(Box::new(WsOrders::open(base, &keys[trader]).await?), trader)
    } else {
        let first = Signer::with_http(http.build()?, base.clone(), keys[0].clone());
        Transport::Rest(Rest {
            signers: keys.iter().map(|k| first.with_key(k.clone())).collect(),
            http1: if o.http2 {
                None
            } else {
                Some(http1::Http1::new(base)?)
            },
        })
    };
    let mut tally = Tally {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        outcomes: BTreeMap::new(),
        acks: Vec::new(),
    };
    // In open loop, this client's share of the rate, its first order offset so that the clients
    // do not fire together.
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.clients as f64 / r.max(0.001)));
    let mut due =
        start + interval.map_or(Duration::ZERO, |i| i.mul_f64(id as f64 / o.clients as f64));
    let mut n = 0u64;
    let mut quotes: Vec<Quote> = Vec::new();
    while Instant::now() < stop {
        n += 1;
        if let (Workload::MarketMaking { amend, place, ioc }, Transport::Rest(rest)) =
            (o.workload, &mut transport)
        {
            let sent = Instant::now();
            let (step, index) = mm_step(&o, (amend, place, ioc), &quotes, id, n, start.elapsed());
            let (trader, result) = match &step {
                MmStep::Place(t, body, _) => {
                    (*t, rest.send(*t, Method::POST, "/orders", Some(body)).await)
                }
                MmStep::Amend(t, oid, body) => (
                    *t,
                    rest.send(*t, Method::PATCH, &format!("/orders/{oid}"), Some(body))
                        .await,
                ),
                MmStep::Cancel(t, oid) => (
                    *t,
                    rest.send(*t, Method::DELETE, &format!("/orders/{oid}"), None)
                        .await,
                ),
            };
            let (status, response) = match result {
                Ok(r) => r,
                Err(_) => (0, Value::Null),
            };
            let outcome = if status == 0 {
                "connection error".to_string()
            } else {
                status.to_string()
            };
            if sent.duration_since(start) >= o.warmup {
                tally
                    .latency
                    .saturating_record(sent.elapsed().as_micros() as u64);
                *tally.outcomes.entry(outcome).or_default() += 1;
            }
            done.fetch_add(1, Ordering::Relaxed);
            let live = matches!(
                response["status"].as_str(),
                Some("NEW" | "PARTIALLY_FILLED")
            );
            match step {
                MmStep::Place(_, body, side) => {
                    let ack = (o.verify && status == 201).then(|| {
                        tally.acks.push(Ack {
                            trader,
                            request: body,
                            response: response.clone(),
                        });
                        tally.acks.len() - 1
                    });
                    if status == 201 && live && !side.is_empty() {
                        let order_id = response["order_id"].as_str().unwrap_or_default().to_owned();
                        quotes.push(Quote {
                            trader,
                            order_id,
                            side,
                            ack,
                        });
                    }
                }
                MmStep::Amend(_, _, body) => {
                    let i = index.expect("an amendment names a quote");
                    if status == 200
                        && let Some(a) = quotes[i].ack.and_then(|a| tally.acks.get_mut(a))
                    {
                        a.request["price"] = body["price"].clone();
                        a.response = response.clone();
                    }
                    if !(status == 200 && live) {
                        quotes.swap_remove(i);
                    }
                }
                MmStep::Cancel(..) => {
                    let i = index.expect("a cancel names a quote");
                    if status == 200
                        && let Some(a) = quotes[i].ack.and_then(|a| tally.acks.get_mut(a))
                    {
                        a.response = response.clone();
                    }
                    quotes.swap_remove(i);
                }
            }
            continue;
        }
        let (mut trader, body) = order(&o.symbols, o.accounts, id, n);
        let sent = match interval {
            Some(interval) => {
                tokio::time::sleep_until(due.into()).await;
                let intended = due;
                due += interval;
                intended
            }
            None => Instant::now(),
        };
        if sent >= stop {
            break;
        }
        let placed = match &mut transport {
            Transport::Rest(rest) => {
                rest.send_reading(trader, Method::POST, "/orders", Some(&body), o.verify)
                    .await
            }
            Transport::Ws(ws, account) => {
                trader = *account;
                ws.place(&body).await
            }
        };
        let (outcome, response) = match placed {
            Ok((status, response)) => (status.to_string(), (status == 201).then_some(response)),
            Err(e) if is_timeout(&e) => ("timeout".into(), None),
            Err(_) => ("connection error".into(), None),
        };
        if sent.duration_since(start) >= o.warmup {
            tally
                .latency
                .saturating_record(sent.elapsed().as_micros() as u64);
            *tally.outcomes.entry(outcome).or_default() += 1;
        }
        done.fetch_add(1, Ordering::Relaxed);
        if o.verify
            && let Some(response) = response
        {
            tally.acks.push(Ack {
                trader,
                request: body,
                response,
            });
        }
    }
    Ok(tally)
}

/// Whether a request failed by taking too long.
pub(crate) fn is_timeout(e: &anyhow::Error) -> bool {
    e.is::<tokio::time::error::Elapsed>()
        || e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
}

/// Why an order read back does not match its acknowledgement, if it does not.
pub(crate) fn mismatch(ack: &Ack, account: u64, now: &Value) -> Option<String> {
    let id = ack.response["order_id"].as_str().unwrap_or("?");
    // Decimals come back at the symbol's scale ("0.01000" for "0.0100"): compare them trimmed.
    let trimmed = |v: &Value| {
        let s = v.as_str().unwrap_or_default();
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    for field in ["symbol", "side", "price", "quantity"] {
        if trimmed(&now[field]) != trimmed(&ack.request[field]) {
            return Some(format!(
                "order {id}: {field} is {} but {} was sent",
                now[field], ack.request[field]
            ));
        }
    }
    if now["account"].as_str() != Some(account.to_string().as_str()) {
        return Some(format!("order {id}: account is {}", now["account"]));
    }
    let lots = |v: &Value| {
        v.as_str()
            .and_then(|s| s.replace('.', "").parse::<u64>().ok())
    };
    let (before, after) = (
        lots(&ack.response["filled_quantity"]),
        lots(&now["filled_quantity"]),
    );
    let acked_final = matches!(
        ack.response["status"].as_str(),
        Some("FILLED" | "CANCELLED")
    );
    match (before, after) {
        (Some(b), Some(a))
            if acked_final && (a != b || now["status"] != ack.response["status"]) =>
        {
            Some(format!(
                "order {id} was acknowledged {} {b}, reads {} {a}",
                ack.response["status"], now["status"]
            ))
        }
        (Some(b), Some(a)) if a < b => Some(format!("order {id} lost fills: {b} then {a}")),
        (Some(_), Some(_)) => None,
        _ => Some(format!("order {id}: filled quantity unreadable")),
    }
}

/// Reads every acknowledged order back, `clients` at a time.
pub(crate) async fn verify(
    o: &Options,
    keys: &Arc<Vec<Credentials>>,
    acks: Vec<Ack>,
) -> anyhow::Result<Verification> {
    let acks = Arc::new(acks);
    let workers = o.clients.clamp(1, 64);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (acks, keys, base) = (
            Arc::clone(&acks),
            Arc::clone(keys),
            o.urls[w % o.urls.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let first = Signer::new(base, keys[0].clone());
            let mut v = Verification::default();
            for ack in acks.iter().skip(w).step_by(workers) {
                v.checked += 1;
                let id = ack.response["order_id"].as_str().unwrap_or_default();
                let key = &keys[ack.trader];
                let signer = first.with_key(key.clone());
                let problem = match signer
                    .send(Method::GET, &format!("/orders/{id}"), None)
                    .await
                {
                    Ok((200, now)) => mismatch(ack, key.account, &now),
                    Ok((status, body)) => Some(format!("order {id}: read back as {status} {body}")),
                    Err(e) => Some(format!("order {id}: {e}")),
                };
                if let Some(p) = problem {
                    v.mismatches += 1;
                    if v.examples.len() < 20 {
                        v.examples.push(p);
                    }
                }
            }
            v
        }));
    }
    let mut total = Verification::default();
    for t in tasks {
        let v = t.await.context("a verification worker panicked")?;
        total.checked += v.checked;
        total.mismatches += v.mismatches;
        total.examples.extend(
            v.examples
                .into_iter()
                .take(20usize.saturating_sub(total.examples.len())),
        );
    }
    Ok(total)
}

/// Runs the load and, if asked, the verification.
pub async fn run(o: Options) -> anyhow::Result<Summary> {
    if o.symbols.is_empty() || o.clients == 0 || o.urls.is_empty() {
        bail!("need at least one URL, one symbol and one client");
    }
    if o.workload != Workload::Limit && (o.websocket || o.rate.is_some()) {
        bail!(
            "the market-making workload runs closed loop over REST (it amends orders): drop --websocket and --rate"
        );
    }
    let keys = Arc::new(traders(&o).await?);
    let o = Arc::new(o);
    let start = Instant::now();
    let md: Vec<_> = (0..o.md_subscribers)
        .map(|i| {
            tokio::spawn(md_subscriber(
                Arc::clone(&o),
                i,
                start + o.warmup,
                start + o.warmup + o.duration + Duration::from_millis(500),
            ))
        })
        .collect();
    let stop = start + o.warmup + o.duration;
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..o.clients)
        .map(|id| {
            tokio::spawn(client(
                Arc::clone(&o),
                Arc::clone(&keys),
                id,
                start,
                stop,
                Arc::clone(&done),
            ))
        })
        .collect();
    let progress = o.progress.then(|| {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last, mut seconds) = (0, 0);
            loop {
                tick.tick().await;
                seconds += 1;
                let now = done.load(Ordering::Relaxed);
                eprint!(
                    "\r{seconds:>4} s  {:>8} orders/s  {now:>10} answered",
                    now - last
                );
                last = now;
            }
        })
    });
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcomes = BTreeMap::<String, u64>::new();
    let mut acks = Vec::new();
    for t in tasks {
        let tally = t.await.context("a client panicked")??;
        latency.add(&tally.latency)?;
        for (k, v) in tally.outcomes {
            *outcomes.entry(k).or_default() += v;
        }
        acks.extend(tally.acks);
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let sent: u64 = outcomes.values().sum();
    // Every operation the exchange took: places (201), amendments and cancels (200).
    let accepted = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| *v)
        .sum::<u64>();
    let seconds = o.duration.as_secs_f64();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let verification = if o.verify {
        Some(verify(&o, &keys, acks).await?)
    } else {
        None
    };
    let conservation = reconcile(&o).await?;
    let mut md_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in md {
        md_latency.add(&t.await.context("a market-data subscriber panicked")??)?;
    }
    let md_ms = |q: f64| md_latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Summary {
        mode: if o.rate.is_some() { "open" } else { "closed" }.into(),
        protocol: if o.websocket {
            "WebSocket"
        } else if o.http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        }
        .into(),
        offered_per_s: o.rate,
        clients: o.clients,
        duration_s: seconds,
        sent,
        accepted,
        orders_per_s: accepted as f64 / seconds,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: latency.max() as f64 / 1000.0,
        },
        outcomes,
        verification,
        market_data_latency_ms: (o.md_subscribers > 0).then(|| Latency {
            p50: md_ms(0.5),
            p90: md_ms(0.9),
            p99: md_ms(0.99),
            p999: md_ms(0.999),
            max: md_latency.max() as f64 / 1000.0,
        }),
        market_data_trades: md_latency.len(),
        conservation,
    })
}
