//! Assets, amounts and the money rules of trading: what an order holds, what a fill moves, and
//! what it costs in fees.
//!
//! Balances are whole numbers of an asset's smallest unit (`10^-scale`), as `u128`. An asset's
//! scale is the finest any listed symbol needs: a base asset's lot size, a quote asset's
//! tick × lot. So every quantity and every price × quantity the engine can produce is an exact
//! whole number of units, and a balance is exact to the last unit.
//!
//! Fees are charged in the asset received (the buyer pays in base, the seller in quote), rounded
//! up to the next unit, so a fee never exceeds what it is taken from.

use crate::command::{MarketSize, NewOrder, OrderType};
use crate::num::{self, Notional, NumError, Price, Qty};
use crate::types::Side;
use crate::views::OrderRecord;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An asset, by its index in the [`Assets`] table.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AssetId(pub u16);

/// An asset and its smallest unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Asset {
    #[serde(skip)]
    pub id: AssetId,
    pub name: String,
    /// Digits after the decimal point: balances are whole multiples of `10^-scale`.
    pub scale: u32,
}

impl Asset {
    /// The smallest unit as a decimal (`0.00000001` for scale 8).
    pub fn unit(&self) -> Decimal {
        Decimal::new(1, self.scale)
    }

    /// An amount in units as a decimal with the asset's scale.
    pub fn to_decimal(&self, units: u128) -> Decimal {
        num::from_steps(units, self.unit())
    }

    /// A signed amount in units as a decimal with the asset's scale.
    pub fn signed_to_decimal(&self, units: i128) -> Decimal {
        let d = self.to_decimal(units.unsigned_abs());
        if units < 0 { -d } else { d }
    }

    /// A client's positive amount as units; refuses anything finer than one unit.
    pub fn from_decimal(&self, d: Decimal) -> Result<u128, NumError> {
        num::to_steps(d, self.unit())
    }
}

/// Every asset the listed symbols trade, in order of first appearance in the symbols file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assets {
    assets: Vec<Asset>,
}

impl Assets {
    pub(crate) fn new(assets: Vec<Asset>) -> Self {
        Self { assets }
    }

    /// The asset with this id.
    pub fn get(&self, id: AssetId) -> Option<&Asset> {
        self.assets.get(id.0 as usize)
    }

    /// The asset with this name, for example `"BTC"`.
    pub fn by_name(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }

    /// Every asset, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Asset> {
        self.assets.iter()
    }

    /// How many assets there are.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// Whether there are none (never, once the symbol table is built).
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }
}

/// One basis point is 1/10,000.
pub const BPS: u128 = 10_000;

/// A symbol's money rules in integers: its assets, unit conversions and fees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    pub base: AssetId,
    pub quote: AssetId,
    /// Base units in one lot.
    pub base_per_lot: u128,
    /// Quote units in one notional unit (one tick × one lot).
    pub quote_per_notional: u128,
    pub maker_fee_bps: u32,
    pub taker_fee_bps: u32,
}

/// What an order sets aside: `amount` units of `asset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub asset: AssetId,
    pub amount: u128,
}

/// An order whose cost cannot be known when it is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("a market buy is sized in the quote asset: give quote_quantity")]
    MarketBuyByBase,
    #[error("a market sell is sized in the base asset: give quantity")]
    MarketSellByQuote,
}

/// What one side of a fill moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillLeg {
    /// What the side pays, out of its order's hold.
    pub paid: Hold,
    /// What it receives, before the fee.
    pub received: Hold,
    /// The fee, in the received asset; the side is credited `received - fee`.
    pub fee: u128,
}

impl Funding {
    /// Base units of `qty`.
    pub fn base_amount(&self, qty: Qty) -> u128 {
        qty.0 as u128 * self.base_per_lot
    }

    /// Quote units of a notional.
    pub fn quote_amount(&self, n: Notional) -> u128 {
        n.0 * self.quote_per_notional
    }

    /// The fee on `amount` received as maker or taker, rounded up to a whole unit.
    pub fn fee(&self, amount: u128, maker: bool) -> u128 {
        let bps = if maker {
            self.maker_fee_bps
        } else {
            self.taker_fee_bps
        } as u128;
        (amount * bps).div_ceil(BPS)
    }

    /// What a resting limit order with `remaining` open at `price` must hold: the quote it
    /// would pay (buy) or the base it would deliver (sell). Fees need no hold: they are taken
    /// from what the order receives.
    pub fn limit_hold(&self, side: Side, price: Price, remaining: Qty) -> Hold {
        match side {
            Side::Buy => Hold {
                asset: self.quote,
                amount: self.quote_amount(price.notional(remaining)),
            },
            Side::Sell => Hold {
                asset: self.base,
                amount: self.base_amount(remaining),
            },
        }
    }

    /// What a new order must hold when it is placed: a limit order its full cost, a market buy
    /// the quote amount it may spend, a market sell the base it may deliver.
    pub fn order_hold(&self, order: &NewOrder) -> Result<Hold, HoldError> {
        match (order.order_type, order.side) {
            (OrderType::Limit { price, qty, .. }, side) => Ok(self.limit_hold(side, price, qty)),
            (
                OrderType::Market {
                    size: MarketSize::Quote(n),
                },
                Side::Buy,
            ) => Ok(Hold {
                asset: self.quote,
                amount: self.quote_amount(n),
            }),
            (
                OrderType::Market {
                    size: MarketSize::Base(q),
                },
                Side::Sell,
            ) => Ok(Hold {
                asset: self.base,
                amount: self.base_amount(q),
            }),
            (OrderType::Market { .. }, Side::Buy) => Err(HoldError::MarketBuyByBase),
            (OrderType::Market { .. }, Side::Sell) => Err(HoldError::MarketSellByQuote),
        }
    }

    /// What an amendment of `order` to `new_price` / `new_qty` (total, filled part included)
    /// needs beyond what the order holds now (zero if it needs less).
    pub fn amend_extra(
        &self,
        order: &OrderRecord,
        new_price: Option<Price>,
        new_qty: Option<Qty>,
    ) -> Hold {
        let held = self.limit_hold(order.side, order.price, order.remaining);
        let qty = new_qty.unwrap_or(order.qty);
        let needed = self.limit_hold(
            order.side,
            new_price.unwrap_or(order.price),
            Qty(qty.0.saturating_sub(order.filled.0)),
        );
        Hold {
            asset: needed.asset,
            amount: needed.amount.saturating_sub(held.amount),
        }
    }

    /// The legs of a fill of `qty` at `price` for the buyer and the seller.
    pub fn fill_legs(&self, price: Price, qty: Qty, buyer_is_maker: bool) -> (FillLeg, FillLeg) {
        let base = Hold {
            asset: self.base,
            amount: self.base_amount(qty),
        };
        let quote = Hold {
            asset: self.quote,
            amount: self.quote_amount(price.notional(qty)),
        };
        let buyer = FillLeg {
            paid: quote,
            received: base,
            fee: self.fee(base.amount, buyer_is_maker),
        };
        let seller = FillLeg {
            paid: base,
            received: quote,
            fee: self.fee(quote.amount, !buyer_is_maker),
        };
        (buyer, seller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funding() -> Funding {
        Funding {
            base: AssetId(0),
            quote: AssetId(1),
            base_per_lot: 1_000,
            quote_per_notional: 1,
            maker_fee_bps: 0,
            taker_fee_bps: 25,
        }
    }

    #[test]
    fn fees_round_up_and_never_exceed_the_amount() {
        let f = funding();
        assert_eq!(f.fee(10_000, false), 25);
        assert_eq!(f.fee(1, false), 1);
        assert_eq!(f.fee(0, false), 0);
        assert_eq!(f.fee(10_000, true), 0);
        for amount in 0..500 {
            assert!(f.fee(amount, false) <= amount);
        }
    }

    #[test]
    fn fills_move_exactly_what_the_price_says() {
        let f = funding();
        let (buyer, seller) = f.fill_legs(Price(7), Qty(3), true);
        assert_eq!(buyer.paid.amount, 21);
        assert_eq!(buyer.received.amount, 3_000);
        assert_eq!(buyer.fee, 0, "the buyer was the maker");
        assert_eq!(seller.paid, buyer.received);
        assert_eq!(seller.received, buyer.paid);
        assert_eq!(seller.fee, 1, "25 bps of 21, rounded up");
    }

    #[test]
    fn amounts_print_with_the_asset_scale() {
        let a = Asset {
            id: AssetId(0),
            name: "BTC".into(),
            scale: 8,
        };
        assert_eq!(a.to_decimal(1).to_string(), "0.00000001");
        assert_eq!(a.signed_to_decimal(-150_000_000).to_string(), "-1.50000000");
        assert_eq!(a.from_decimal(Decimal::new(15, 1)), Ok(150_000_000));
        assert!(a.from_decimal(Decimal::new(1, 9)).is_err());
    }
}
