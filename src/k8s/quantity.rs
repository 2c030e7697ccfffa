//! Kubernetes resource quantities (`512Mi`, `250m`, `1.5G`, `2e3`), parsed and compared exactly as
//! `k8s.io/apimachinery/pkg/api/resource` does: arbitrary precision, rounded up (away from zero)
//! to the nano, so `0.1m` and `100u` compare equal and `1Gi` is exactly 1073741824.

use num_bigint::BigInt;
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::fmt;

/// Exponents beyond this are refused rather than expanded into huge integers.
const MAX_EXPONENT: i64 = 1000;

/// A parsed quantity, held as an exact integer count of nano-units (10^-9).
#[derive(Clone, Debug)]
pub struct Quantity {
    nanos: BigInt,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}"
)]
pub struct QuantityError(pub String);

impl Quantity {
    /// Parses a quantity string the way Kubernetes' `resource.ParseQuantity` does.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let err = || QuantityError(input.to_string());
        let s = input;
        if s.is_empty() {
            return Err(err());
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if bytes[0] == b'+' || bytes[0] == b'-' {
            negative = bytes[0] == b'-';
            pos = 1;
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &s[int_start..pos];
        let mut frac_digits = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &s[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(err());
        }
        let suffix = &s[pos..];
        // value = digits * 10^(dec_exp) * 2^(bin_exp)
        let (dec_exp, bin_exp): (i64, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            _ => {
                let rest = suffix.strip_prefix(['e', 'E']).ok_or_else(err)?;
                let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let exp: i64 = rest.parse().map_err(|_| err())?;
                // unsigned_abs: `i64::MIN.abs()` overflows (a panic in debug, and in release a
                // negative number that passed this bound and made pow10 run for ever; fuzz).
                if exp.unsigned_abs() > MAX_EXPONENT.unsigned_abs() {
                    return Err(err());
                }
                (exp, 0)
            }
        };
        let mut mantissa: BigInt = format!("0{int_digits}{frac_digits}")
            .parse()
            .map_err(|_| err())?;
        if negative {
            mantissa = -mantissa;
        }
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| err())?;
        // nanos = mantissa * 2^bin * 10^(dec_exp - frac_len + 9), rounded away from zero.
        let mantissa = mantissa << bin_exp;
        let scale = dec_exp - frac_len + 9;
        let nanos = if scale >= 0 {
            mantissa * pow10(scale)
        } else {
            let divisor = pow10(-scale);
            let quotient = &mantissa / &divisor;
            if (&mantissa % &divisor).is_zero() {
                quotient
            } else if mantissa.is_negative() {
                quotient - 1
            } else {
                quotient + 1
            }
        };
        Ok(Self {
            nanos,
            text: input.to_string(),
        })
    }

    /// The value as a whole number, if it is one and fits in an i64 (Kubernetes' `asInteger`).
    pub fn as_integer(&self) -> Option<i64> {
        let billion = pow10(9);
        if !(&self.nanos % &billion).is_zero() {
            return None;
        }
        (&self.nanos / billion).to_i64()
    }

    pub fn is_integer(&self) -> bool {
        self.as_integer().is_some()
    }

    pub fn as_approximate_float(&self) -> f64 {
        self.nanos.to_f64().unwrap_or(f64::NAN) / 1e9
    }

    pub fn sign(&self) -> i64 {
        match self.nanos.sign() {
            num_bigint::Sign::Minus => -1,
            num_bigint::Sign::NoSign => 0,
            num_bigint::Sign::Plus => 1,
        }
    }

    pub fn from_integer(value: i64) -> Self {
        Self {
            nanos: BigInt::from(value) * pow10(9),
            text: value.to_string(),
        }
    }

    #[must_use]
    pub fn add(&self, other: &Self) -> Self {
        Self::from_nanos(&self.nanos + &other.nanos)
    }

    #[must_use]
    pub fn sub(&self, other: &Self) -> Self {
        Self::from_nanos(&self.nanos - &other.nanos)
    }

    fn from_nanos(nanos: BigInt) -> Self {
        let billion = pow10(9);
        let text = if (&nanos % &billion).is_zero() {
            (&nanos / billion).to_string()
        } else {
            format!("{nanos}n")
        };
        Self { nanos, text }
    }
}

fn pow10(exp: i64) -> BigInt {
    let mut result = BigInt::one();
    let ten = BigInt::from(10);
    for _ in 0..exp {
        result *= &ten;
    }
    result
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(q("1Gi").as_integer(), Some(1_073_741_824));
        assert_eq!(q("512Mi").as_integer(), Some(536_870_912));
        assert_eq!(q("1.5G").as_integer(), Some(1_500_000_000));
        assert_eq!(q("2e3").as_integer(), Some(2000));
        assert_eq!(q("2E3").as_integer(), Some(2000));
        assert_eq!(q("1E").as_integer(), Some(1_000_000_000_000_000_000));
        assert_eq!(q("250m").as_integer(), None);
        assert!((q("250m").as_approximate_float() - 0.25).abs() < 1e-12);
        assert_eq!(q("0.25"), q("250m"));
    }

    #[test]
    fn compares_across_units() {
        assert!(q("512Mi") < q("1Gi"));
        assert!(q("2Gi") > q("2G"));
        assert_eq!(q("1000m").cmp(&q("1")), Ordering::Equal);
        assert_eq!(q("0.5Gi").cmp(&q("512Mi")), Ordering::Equal);
        assert_eq!(q("1k").cmp(&q("1000")), Ordering::Equal);
        assert!(q("1Ki") > q("1k"));
        assert!(q("-1") < q("0"));
        assert_eq!(q("+5").cmp(&q("5")), Ordering::Equal);
        assert_eq!(q(".5").cmp(&q("500m")), Ordering::Equal);
        assert_eq!(q("5.").cmp(&q("5")), Ordering::Equal);
    }

    #[test]
    fn rounds_up_to_nano_like_kubernetes() {
        assert_eq!(q("0.1n").cmp(&q("1n")), Ordering::Equal);
        assert_eq!(q("1.0000000001").cmp(&q("1000000001n")), Ordering::Equal);
        assert_eq!(q("-0.1n").cmp(&q("-1n")), Ordering::Equal);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "Mi", "1MB", "1.2.3", "abc", "1 Gi", "1e", "1e+", "--1", "1e99999", "1ii",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn integer_round_trips(n in -1_000_000_000_000i64..1_000_000_000_000i64) {
            prop_assert_eq!(q(&n.to_string()).as_integer(), Some(n));
        }

        #[test]
        fn binary_suffix_is_a_power_of_two(n in 0i64..1_000_000, p in 0usize..4) {
            let (suffix, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40)][p];
            prop_assert_eq!(q(&format!("{n}{suffix}")).as_integer(), Some(n << shift));
        }

        #[test]
        fn ordering_matches_integers(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000) {
            // `m` moves three decimal places: a m vs b compares like a vs b*1000.
            let left = q(&format!("{a}m"));
            let right = q(&b.to_string());
            prop_assert_eq!(left.cmp(&right), a.cmp(&(b * 1000)));
        }

        #[test]
        fn decimal_and_exponent_forms_agree(mantissa in 0u32..100_000, exp in 0usize..4) {
            let (suffix, e) = [("k", 3), ("M", 6), ("G", 9), ("T", 12)][exp];
            prop_assert_eq!(q(&format!("{mantissa}{suffix}")).cmp(&q(&format!("{mantissa}e{e}"))), Ordering::Equal);
        }

        #[test]
        fn never_panics(s in "\\PC{0,16}") {
            let _ = Quantity::parse(&s);
        }
    }
}
