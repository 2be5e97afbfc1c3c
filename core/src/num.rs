//! Fixed-point money: prices in ticks, quantities in lots, notionals in tick × lot units.
//!
//! Inside the engine everything is an unsigned integer scaled per symbol. Decimals appear only at
//! the edge: [`parse_decimal`] reads the API's strings strictly, and [`crate::SymbolSpec`] turns a
//! decimal into ticks or lots (rejecting anything that is not an exact multiple) and back.
//! Nothing here, or anywhere in the money path, uses floating point.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A price as a whole number of the symbol's ticks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Price(pub u64);

/// A quantity of the base asset as a whole number of the symbol's lots.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Qty(pub u64);

/// An amount of the quote asset in units of one tick times one lot (price × quantity, exactly).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Notional(pub u128);

impl Price {
    /// The notional of `qty` at this price. Cannot overflow: u64 × u64 fits in u128.
    #[inline]
    pub fn notional(self, qty: Qty) -> Notional {
        Notional(self.0 as u128 * qty.0 as u128)
    }
}

/// Longest decimal string accepted from a client.
pub const MAX_DECIMAL_LEN: usize = 40;
/// Most digits after the decimal point accepted from a client.
pub const MAX_DECIMAL_SCALE: u32 = 18;

/// Why a number from a client was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NumError {
    #[error("is not a decimal number (digits with an optional '.', no exponent, no sign but '-')")]
    Malformed,
    #[error("has too many digits")]
    TooManyDigits,
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than zero")]
    Zero,
    #[error("must be a multiple of {step}")]
    OffStep { step: Decimal },
    #[error("must be at most {max}")]
    AboveMax { max: Decimal },
    #[error("must be at least {min}")]
    BelowMin { min: Decimal },
}

/// Parses a client's decimal string strictly: `-?[0-9]+(\.[0-9]+)?`, at most
/// [`MAX_DECIMAL_LEN`] characters and [`MAX_DECIMAL_SCALE`] fractional digits. No exponents,
/// no `NaN`/`inf`, no `+`, no surrounding spaces, and never silently rounded.
pub fn parse_decimal(s: &str) -> Result<Decimal, NumError> {
    if s.len() > MAX_DECIMAL_LEN {
        return Err(NumError::TooManyDigits);
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(NumError::Malformed);
    }
    if frac.map_or(0, str::len) > MAX_DECIMAL_SCALE as usize {
        return Err(NumError::TooManyDigits);
    }
    let d = Decimal::from_str_exact(s).map_err(|_| NumError::TooManyDigits)?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(NumError::Negative);
    }
    Ok(d)
}

/// `value / step` as an integer, if `value` is a positive exact multiple of `step` and fits in u128.
pub(crate) fn to_steps(value: Decimal, step: Decimal) -> Result<u128, NumError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(NumError::Negative);
    }
    if value.is_zero() {
        return Err(NumError::Zero);
    }
    if !(value % step).is_zero() {
        return Err(NumError::OffStep {
            step: step.normalize(),
        });
    }
    let steps = (value / step).trunc();
    // A Decimal's mantissa is 96 bits, so an integer-valued Decimal always fits in u128.
    u128::try_from(steps).map_err(|_| NumError::TooManyDigits)
}

/// `steps × step` as a decimal with the step's scale (trailing zeros kept, as exchanges print).
pub(crate) fn from_steps(steps: u128, step: Decimal) -> Decimal {
    let mantissa = i128::try_from(steps).expect("engine quantities fit in i128");
    let mut d = Decimal::from_i128_with_scale(mantissa * step.mantissa(), step.scale());
    d.rescale(step.scale());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(parse_decimal("1"), Ok(d("1")));
        assert_eq!(parse_decimal("0.00000001"), Ok(d("0.00000001")));
        assert_eq!(parse_decimal("65000.50"), Ok(d("65000.50")));
        assert_eq!(parse_decimal("0"), Ok(d("0")));
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for s in [
            "", "abc", "NaN", "nan", "inf", "-inf", "1e5", "1E5", "+1", " 1", "1 ", "1.", ".5",
            "1..2", "1.2.3", "0x10", "１",
        ] {
            assert_eq!(parse_decimal(s), Err(NumError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn rejects_negative_and_too_long() {
        assert_eq!(parse_decimal("-1"), Err(NumError::Negative));
        assert_eq!(parse_decimal("-0.5"), Err(NumError::Negative));
        assert_eq!(parse_decimal("-0"), Ok(Decimal::ZERO));
        assert_eq!(
            parse_decimal("0.1234567890123456789"),
            Err(NumError::TooManyDigits)
        );
        assert_eq!(
            parse_decimal("123456789012345678901234567890"),
            Err(NumError::TooManyDigits)
        );
        assert_eq!(parse_decimal(&"1".repeat(41)), Err(NumError::TooManyDigits));
    }

    #[test]
    fn steps_are_exact_multiples() {
        assert_eq!(to_steps(d("1.23"), d("0.01")), Ok(123));
        assert_eq!(to_steps(d("1.230000"), d("0.01")), Ok(123));
        assert_eq!(to_steps(d("1.5"), d("0.5")), Ok(3));
        assert_eq!(
            to_steps(d("1.234"), d("0.01")),
            Err(NumError::OffStep { step: d("0.01") })
        );
        assert_eq!(to_steps(d("0"), d("0.01")), Err(NumError::Zero));
        assert_eq!(to_steps(d("-1"), d("0.01")), Err(NumError::Negative));
    }

    #[test]
    fn steps_round_trip_with_the_step_scale() {
        assert_eq!(from_steps(123, d("0.01")).to_string(), "1.23");
        assert_eq!(from_steps(100, d("0.01")).to_string(), "1.00");
        assert_eq!(from_steps(3, d("0.5")).to_string(), "1.5");
        assert_eq!(from_steps(7, d("0.00001")).to_string(), "0.00007");
    }

    #[test]
    fn notional_is_exact() {
        assert_eq!(Price(u64::MAX).notional(Qty(2)).0, u64::MAX as u128 * 2);
    }
}
