//! Symbols and their trading rules, loaded from the symbols file (`config/symbols.toml`).
//!
//! A [`SymbolSpec`] holds the rules twice: as decimals for the API (exchange info) and as integer
//! ticks, lots and notional units for the engine. Everything that turns a client's decimal into an
//! engine integer goes through its `*_from_decimal` methods, which refuse anything inexact.

use crate::funds::{Asset, AssetId, Assets, Funding};
use crate::num::{self, Notional, NumError, Price, Qty};
use crate::types::SymbolId;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The symbols file shipped with the project, used when no other is configured.
pub const DEFAULT_SYMBOLS_TOML: &str = include_str!("../../config/symbols.toml");

/// One `[[symbol]]` entry of the symbols file, as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolConfig {
    pub name: String,
    pub base: String,
    pub quote: String,
    #[serde(with = "decimal_str")]
    pub tick_size: Decimal,
    #[serde(with = "decimal_str")]
    pub lot_size: Decimal,
    #[serde(with = "decimal_str")]
    pub min_qty: Decimal,
    #[serde(with = "decimal_str")]
    pub max_qty: Decimal,
    #[serde(with = "decimal_str")]
    pub max_price: Decimal,
    #[serde(with = "decimal_str")]
    pub min_notional: Decimal,
    /// Fee for the resting side of a trade, in basis points of what it receives.
    #[serde(default)]
    pub maker_fee_bps: u32,
    /// Fee for the incoming side of a trade, in basis points of what it receives.
    #[serde(default)]
    pub taker_fee_bps: u32,
}

/// Highest fee accepted, in basis points (10%).
pub const MAX_FEE_BPS: u32 = 1_000;

/// Finest asset unit supported: 18 digits after the decimal point.
pub const MAX_ASSET_SCALE: u32 = 18;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SymbolsFile {
    symbol: Vec<SymbolConfig>,
}

/// The engine's integer form of a symbol's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub min_qty: Qty,
    pub max_qty: Qty,
    pub max_price: Price,
    pub min_notional: Notional,
}

/// A symbol with validated rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SymbolSpec {
    pub id: SymbolId,
    pub name: String,
    pub base: String,
    pub quote: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub max_price: Decimal,
    pub min_notional: Decimal,
    pub maker_fee_bps: u32,
    pub taker_fee_bps: u32,
    #[serde(skip)]
    pub limits: Limits,
    /// Assets, unit conversions and fees in integers (filled in by the table).
    #[serde(skip)]
    pub funding: Funding,
}

/// A symbol that is not in the table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown symbol {0:?}")]
pub struct UnknownSymbol(pub String);

/// Why a symbols file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SymbolConfigError {
    #[error("symbols file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("symbols file lists no symbol")]
    Empty,
    #[error("symbol {0:?} is listed twice")]
    Duplicate(String),
    #[error("symbol {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("at most {} symbols are supported", u16::MAX)]
    TooMany,
}

impl SymbolSpec {
    fn from_config(id: SymbolId, c: SymbolConfig) -> Result<Self, SymbolConfigError> {
        let bad = |reason: String| SymbolConfigError::Invalid {
            name: c.name.clone(),
            reason,
        };
        let asset_ok = |a: &str| {
            (1..=10).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        if !asset_ok(&c.base) || !asset_ok(&c.quote) {
            return Err(bad("base and quote must be 1 to 10 of A-Z and 0-9".into()));
        }
        if c.name != format!("{}-{}", c.base, c.quote) {
            return Err(bad(format!("name must be \"{}-{}\"", c.base, c.quote)));
        }
        for (field, step) in [("tick_size", c.tick_size), ("lot_size", c.lot_size)] {
            if step <= Decimal::ZERO {
                return Err(bad(format!("{field} must be greater than zero")));
            }
        }
        let steps = |field: &str, v: Decimal, step: Decimal| {
            let n = num::to_steps(v, step).map_err(|e| bad(format!("{field} {e}")))?;
            u64::try_from(n).map_err(|_| bad(format!("{field} is too large")))
        };
        let min_qty = Qty(steps("min_qty", c.min_qty, c.lot_size)?);
        let max_qty = Qty(steps("max_qty", c.max_qty, c.lot_size)?);
        let max_price = Price(steps("max_price", c.max_price, c.tick_size)?);
        if min_qty > max_qty {
            return Err(bad("min_qty must not exceed max_qty".into()));
        }
        for (field, bps) in [
            ("maker_fee_bps", c.maker_fee_bps),
            ("taker_fee_bps", c.taker_fee_bps),
        ] {
            if bps > MAX_FEE_BPS {
                return Err(bad(format!("{field} must be at most {MAX_FEE_BPS}")));
            }
        }
        let unit = c.tick_size * c.lot_size;
        let min_notional = if c.min_notional.is_zero() {
            Notional(0)
        } else {
            Notional(
                num::to_steps(c.min_notional, unit)
                    .map_err(|e| bad(format!("min_notional {e} (tick_size × lot_size)")))?,
            )
        };
        Ok(Self {
            id,
            limits: Limits {
                min_qty,
                max_qty,
                max_price,
                min_notional,
            },
            name: c.name,
            base: c.base,
            quote: c.quote,
            tick_size: c.tick_size.normalize(),
            lot_size: c.lot_size.normalize(),
            min_qty: c.min_qty.normalize(),
            max_qty: c.max_qty.normalize(),
            max_price: c.max_price.normalize(),
            min_notional: c.min_notional.normalize(),
            maker_fee_bps: c.maker_fee_bps,
            taker_fee_bps: c.taker_fee_bps,
            funding: Funding::default(),
        })
    }

    /// The smallest quote amount the engine can express: one tick times one lot.
    pub fn notional_unit(&self) -> Decimal {
        self.tick_size * self.lot_size
    }

    /// A client's price as ticks: positive, a multiple of the tick size, at most the max price.
    pub fn price_from_decimal(&self, d: Decimal) -> Result<Price, NumError> {
        let ticks = num::to_steps(d, self.tick_size)?;
        if ticks > self.limits.max_price.0 as u128 {
            return Err(NumError::AboveMax {
                max: self.max_price,
            });
        }
        Ok(Price(ticks as u64))
    }

    /// A client's quantity as lots: a multiple of the lot size, between min and max quantity.
    pub fn qty_from_decimal(&self, d: Decimal) -> Result<Qty, NumError> {
        let lots = num::to_steps(d, self.lot_size)?;
        if lots > self.limits.max_qty.0 as u128 {
            return Err(NumError::AboveMax { max: self.max_qty });
        }
        if lots < self.limits.min_qty.0 as u128 {
            return Err(NumError::BelowMin { min: self.min_qty });
        }
        Ok(Qty(lots as u64))
    }

    /// A client's quote amount (for example a market buy's spend) in notional units.
    pub fn notional_from_decimal(&self, d: Decimal) -> Result<Notional, NumError> {
        let units = num::to_steps(d, self.notional_unit())?;
        if units < self.limits.min_notional.0 {
            return Err(NumError::BelowMin {
                min: self.min_notional,
            });
        }
        let max = self.limits.max_price.notional(self.limits.max_qty);
        if units > max.0 {
            return Err(NumError::AboveMax {
                max: self.notional_to_decimal(max),
            });
        }
        Ok(Notional(units))
    }

    /// Ticks back to a decimal price, printed with the tick's scale.
    pub fn price_to_decimal(&self, p: Price) -> Decimal {
        num::from_steps(p.0 as u128, self.tick_size)
    }

    /// Lots back to a decimal quantity, printed with the lot's scale.
    pub fn qty_to_decimal(&self, q: Qty) -> Decimal {
        num::from_steps(q.0 as u128, self.lot_size)
    }

    /// Notional units back to a decimal quote amount.
    pub fn notional_to_decimal(&self, n: Notional) -> Decimal {
        num::from_steps(n.0, self.notional_unit())
    }
}

/// All symbols the exchange lists, by id and by name.
#[derive(Clone, Debug)]
pub struct SymbolTable {
    symbols: Vec<SymbolSpec>,
    by_name: HashMap<String, SymbolId>,
    assets: Assets,
}

impl SymbolTable {
    /// Parses and validates a symbols file. Ids are assigned in file order, so new symbols are
    /// appended to keep the ids of existing ones.
    pub fn from_toml(text: &str) -> Result<Self, SymbolConfigError> {
        let file: SymbolsFile = toml::from_str(text)?;
        Self::from_configs(file.symbol)
    }

    /// Validates symbol configs given in code.
    pub fn from_configs(configs: Vec<SymbolConfig>) -> Result<Self, SymbolConfigError> {
        if configs.is_empty() {
            return Err(SymbolConfigError::Empty);
        }
        if configs.len() > u16::MAX as usize {
            return Err(SymbolConfigError::TooMany);
        }
        let mut symbols = Vec::with_capacity(configs.len());
        let mut by_name = HashMap::new();
        for (i, c) in configs.into_iter().enumerate() {
            let id = SymbolId(i as u16);
            if by_name.insert(c.name.clone(), id).is_some() {
                return Err(SymbolConfigError::Duplicate(c.name));
            }
            symbols.push(SymbolSpec::from_config(id, c)?);
        }
        let assets = fund(&mut symbols)?;
        Ok(Self {
            symbols,
            by_name,
            assets,
        })
    }

    /// Every asset the symbols trade.
    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// The symbols shipped with the project (BTC-USD, ETH-USD, SOL-USD, ETH-BTC, ...).
    pub fn default_symbols() -> Self {
        Self::from_toml(DEFAULT_SYMBOLS_TOML).expect("the shipped symbols file is valid")
    }

    /// The symbol with this id.
    pub fn get(&self, id: SymbolId) -> Option<&SymbolSpec> {
        self.symbols.get(id.0 as usize)
    }

    /// The symbol with this name, for example `"BTC-USD"`.
    pub fn by_name(&self, name: &str) -> Result<&SymbolSpec, UnknownSymbol> {
        self.by_name
            .get(name)
            .map(|id| &self.symbols[id.0 as usize])
            .ok_or_else(|| UnknownSymbol(name.to_owned()))
    }

    /// Every symbol, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &SymbolSpec> {
        self.symbols.iter()
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether the table is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

/// Derives the asset table (each asset's scale is the finest unit any symbol needs) and fills in
/// every symbol's [`Funding`].
fn fund(symbols: &mut [SymbolSpec]) -> Result<Assets, SymbolConfigError> {
    let mut assets: Vec<Asset> = Vec::new();
    let mut need = |name: &str, step: Decimal| {
        let scale = step.normalize().scale();
        match assets.iter_mut().find(|a| a.name == name) {
            Some(a) => a.scale = a.scale.max(scale),
            None => assets.push(Asset {
                id: AssetId(assets.len() as u16),
                name: name.to_owned(),
                scale,
            }),
        }
    };
    for s in symbols.iter() {
        need(&s.base, s.lot_size);
        need(&s.quote, s.notional_unit());
    }
    if let Some(a) = assets.iter().find(|a| a.scale > MAX_ASSET_SCALE) {
        return Err(SymbolConfigError::Invalid {
            name: a.name.clone(),
            reason: format!("needs more than {MAX_ASSET_SCALE} decimal places"),
        });
    }
    for s in symbols.iter_mut() {
        let asset = |name: &str| {
            assets
                .iter()
                .find(|a| a.name == name)
                .expect("collected above")
        };
        let (base, quote) = (asset(&s.base), asset(&s.quote));
        let per = |step: Decimal, a: &Asset| {
            num::to_steps(step, a.unit()).expect("an asset's unit divides every step it serves")
        };
        s.funding = Funding {
            base: base.id,
            quote: quote.id,
            base_per_lot: per(s.lot_size, base),
            quote_per_notional: per(s.notional_unit(), quote),
            maker_fee_bps: s.maker_fee_bps,
            taker_fee_bps: s.taker_fee_bps,
        };
    }
    Ok(Assets::new(assets))
}

mod decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let s = String::deserialize(d)?;
        crate::num::parse_decimal(&s).map_err(|e| serde::de::Error::custom(format!("{s:?} {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn shipped_symbols_load() {
        let t = SymbolTable::default_symbols();
        for name in ["BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC"] {
            let s = t.by_name(name).unwrap();
            assert_eq!(t.get(s.id).unwrap().name, name);
        }
        assert!(t.by_name("DOGE-EUR").is_err());
    }

    #[test]
    fn conversions_are_exact_and_checked() {
        let t = SymbolTable::default_symbols();
        let btc = t.by_name("BTC-USD").unwrap();
        assert_eq!(btc.price_from_decimal(d("65000.01")), Ok(Price(6_500_001)));
        assert_eq!(
            btc.price_to_decimal(Price(6_500_001)).to_string(),
            "65000.01"
        );
        assert!(matches!(
            btc.price_from_decimal(d("65000.001")),
            Err(NumError::OffStep { .. })
        ));
        assert!(matches!(
            btc.price_from_decimal(d("100000000")),
            Err(NumError::AboveMax { .. })
        ));
        assert_eq!(btc.price_from_decimal(d("0")), Err(NumError::Zero));
        assert_eq!(btc.qty_from_decimal(d("0.5")), Ok(Qty(50_000)));
        assert!(matches!(
            btc.qty_from_decimal(d("0.000001")),
            Err(NumError::OffStep { .. })
        ));
        assert!(matches!(
            btc.qty_from_decimal(d("100000")),
            Err(NumError::AboveMax { .. })
        ));
        assert_eq!(
            btc.notional_from_decimal(d("100")).unwrap().0,
            100 * 10_000_000
        );
        assert!(matches!(
            btc.notional_from_decimal(d("0.5")),
            Err(NumError::BelowMin { .. })
        ));
    }

    fn config(name: &str) -> SymbolConfig {
        SymbolConfig {
            name: name.into(),
            base: "AAA".into(),
            quote: "BBB".into(),
            tick_size: d("0.01"),
            lot_size: d("0.1"),
            min_qty: d("0.1"),
            max_qty: d("100"),
            max_price: d("1000"),
            min_notional: d("0"),
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        }
    }

    #[test]
    fn assets_take_the_finest_unit_any_symbol_needs() {
        let t = SymbolTable::default_symbols();
        let scale = |n: &str| t.assets().by_name(n).unwrap().scale;
        // USD: BTC-USD's 0.01 × 0.00001; BTC: ETH-BTC's 0.00001 × 0.001; ETH: ETH-USD's lot.
        assert_eq!(
            (scale("BTC"), scale("USD"), scale("ETH"), scale("SOL")),
            (8, 7, 4, 2)
        );
        let btc = t.by_name("BTC-USD").unwrap().funding;
        assert_eq!((btc.base_per_lot, btc.quote_per_notional), (1_000, 1));
        let eth_btc = t.by_name("ETH-BTC").unwrap().funding;
        assert_eq!((eth_btc.base_per_lot, eth_btc.quote_per_notional), (10, 1));
        let mut c = config("AAA-BBB");
        c.taker_fee_bps = MAX_FEE_BPS + 1;
        assert!(SymbolTable::from_configs(vec![c]).is_err());
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(SymbolTable::from_configs(vec![config("AAA-BBB")]).is_ok());
        assert!(matches!(
            SymbolTable::from_configs(vec![config("AAA-BBB"), config("AAA-BBB")]),
            Err(SymbolConfigError::Duplicate(_))
        ));
        assert!(matches!(
            SymbolTable::from_configs(vec![config("AAA-CCC")]),
            Err(SymbolConfigError::Invalid { .. })
        ));
        let mut c = config("AAA-BBB");
        c.min_qty = d("0.15");
        assert!(SymbolTable::from_configs(vec![c]).is_err());
        let mut c = config("AAA-BBB");
        c.min_qty = d("200");
        assert!(SymbolTable::from_configs(vec![c]).is_err());
        assert!(matches!(
            SymbolTable::from_configs(vec![]),
            Err(SymbolConfigError::Empty)
        ));
        assert!(SymbolTable::from_toml("symbol = 1").is_err());
        assert!(
            SymbolTable::from_toml(
                "[[symbol]]\nname=\"A-B\"\nbase=\"A\"\nquote=\"B\"\ntick_size=\"1e-2\"\n\
                 lot_size=\"1\"\nmin_qty=\"1\"\nmax_qty=\"1\"\nmax_price=\"1\"\nmin_notional=\"0\""
            )
            .is_err()
        );
    }
}
