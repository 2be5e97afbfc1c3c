//! Log records shared by the shard's test files.
#![allow(dead_code)]

use exchange_core::*;
use exchange_shard::LogRecord;

/// The `i`-th of a stream of limit orders around 65,000 from five accounts, which trade.
pub fn place(i: u64, client: Option<&str>) -> LogRecord {
    let side = if i.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let order = NewOrder {
        symbol: SymbolId(0),
        order_id: OrderId(0),
        account: AccountId(1 + i % 5),
        client_order_id: client.map(|c| ClientOrderId::new(c).unwrap()),
        side,
        order_type: OrderType::Limit {
            price: Price(6_500_000 + (i * 37) % 200 - 100),
            qty: Qty(1_000 + (i * 13) % 5_000),
            tif: TimeInForce::Gtc,
            post_only: false,
        },
        stp: StpMode::None,
    };
    let hold = SymbolTable::default_symbols()
        .get(SymbolId(0))
        .unwrap()
        .funding
        .order_hold(&order)
        .unwrap();
    LogRecord {
        ts: Timestamp(1_700_000_000_000_000_000 + i * 1_000_000),
        cmd: Command::Place(order),
        hold,
    }
}
