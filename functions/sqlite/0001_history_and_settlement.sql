-- The embedded store: rollup's trade history and candles, and settle's trades, orders, ledger
-- and balances, in one SQLite file under the data directory. Amounts are exact decimal
-- strings (SQLite has no exact decimal type); the store does the arithmetic in Rust.

CREATE TABLE trades (
    symbol      TEXT    NOT NULL,
    trade_id    INTEGER NOT NULL,
    time_us     INTEGER NOT NULL,
    price       TEXT    NOT NULL,
    quantity    TEXT    NOT NULL,
    taker_side  TEXT    NOT NULL,
    PRIMARY KEY (symbol, trade_id)
) WITHOUT ROWID;
CREATE INDEX trades_by_time ON trades (symbol, time_us);

CREATE TABLE candles (
    symbol          TEXT    NOT NULL,
    interval        TEXT    NOT NULL,
    bucket_ms       INTEGER NOT NULL,
    open            TEXT    NOT NULL,
    high            TEXT    NOT NULL,
    low             TEXT    NOT NULL,
    close           TEXT    NOT NULL,
    volume          TEXT    NOT NULL,
    quote_volume    TEXT    NOT NULL,
    trades          INTEGER NOT NULL,
    first_trade_id  INTEGER NOT NULL,
    last_trade_id   INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, bucket_ms)
) WITHOUT ROWID;

CREATE TABLE settled_trades (
    trade_id  INTEGER PRIMARY KEY,
    doc       TEXT    NOT NULL
);

CREATE TABLE orders (
    order_id  INTEGER PRIMARY KEY,
    account   INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    doc       TEXT    NOT NULL
);
CREATE INDEX orders_by_account ON orders (account);

CREATE TABLE ledger (
    account    INTEGER NOT NULL,
    entry_id   TEXT    NOT NULL,
    asset      TEXT    NOT NULL,
    amount     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    reference  TEXT    NOT NULL,
    symbol     TEXT,
    time_ns    INTEGER NOT NULL,
    PRIMARY KEY (account, entry_id)
) WITHOUT ROWID;

CREATE TABLE balances (
    account  INTEGER NOT NULL,
    asset    TEXT    NOT NULL,
    total    TEXT    NOT NULL,
    PRIMARY KEY (account, asset)
) WITHOUT ROWID;
