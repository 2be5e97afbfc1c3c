-- Rollup's store: trade history and OHLCV candles. Prices and volumes are NUMERIC, never float.
-- On plain PostgreSQL these are ordinary tables with the indexes the reads need; the next
-- migration turns `trades` into a TimescaleDB hypertable where the extension is available.

CREATE TABLE IF NOT EXISTS trades (
    time        TIMESTAMPTZ NOT NULL,
    symbol      TEXT        NOT NULL,
    trade_id    BIGINT      NOT NULL,
    price       NUMERIC     NOT NULL,
    quantity    NUMERIC     NOT NULL,
    taker_side  TEXT        NOT NULL CHECK (taker_side IN ('BUY', 'SELL')),
    -- A hypertable's unique keys must hold its time column; the trade id alone is unique.
    PRIMARY KEY (symbol, trade_id, time)
);
CREATE INDEX IF NOT EXISTS trades_by_time ON trades (symbol, time DESC);

CREATE TABLE IF NOT EXISTS candles (
    symbol          TEXT        NOT NULL,
    interval        TEXT        NOT NULL CHECK (interval IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    bucket          TIMESTAMPTZ NOT NULL,
    open            NUMERIC     NOT NULL,
    high            NUMERIC     NOT NULL,
    low             NUMERIC     NOT NULL,
    close           NUMERIC     NOT NULL,
    volume          NUMERIC     NOT NULL,
    quote_volume    NUMERIC     NOT NULL,
    trade_count     BIGINT      NOT NULL,
    -- The first and last trades folded in: what makes merging partial candles exact.
    first_trade_id  BIGINT      NOT NULL,
    last_trade_id   BIGINT      NOT NULL,
    PRIMARY KEY (symbol, interval, bucket)
);
