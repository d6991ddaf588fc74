//! `numeric` in `numeric_recv`'s binary format, from decimal text.

use super::shorten;

/// Encodes decimal text (`-12.5`, `1e-3`, `NaN`) in `numeric_recv`'s format: digit count,
/// weight, sign and display scale, then base-10000 digits.
pub fn numeric(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    const LIMIT: usize = 1000;
    let invalid = || format!("\"{}\" is not a number", shorten(text));
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if unsigned.eq_ignore_ascii_case("nan") {
        out.extend_from_slice(&[0, 0, 0, 0, 0xC0, 0, 0, 0]);
        return Ok(());
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().map_err(|_| invalid())?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(invalid());
    }
    if mantissa.len() > LIMIT || exponent.unsigned_abs() > LIMIT as u64 {
        return Err(format!("\"{}\" has too many digits", shorten(text)));
    }
    let scale = (frac_part.len() as i64 - exponent).max(0);
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    // The position of the decimal point within `digits`.
    let mut point = int_part.len() as i64 + exponent;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    point -= leading as i64;
    let (mut groups, mut weight) = (Vec::new(), 0i64);
    if !digits.is_empty() {
        // Align the point on a group boundary, then cut into groups of four digits.
        let pad = (4 - point.rem_euclid(4)) % 4;
        let mut aligned = vec![0u8; pad as usize];
        aligned.extend_from_slice(&digits);
        point += pad;
        while !aligned.len().is_multiple_of(4) {
            aligned.push(0);
        }
        groups = aligned.chunks(4).map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(*d))).collect();
        while groups.last() == Some(&0) {
            groups.pop();
        }
        weight = point / 4 - 1;
    }
    let count = i16::try_from(groups.len()).map_err(|_| invalid())?;
    let weight = i16::try_from(weight).map_err(|_| invalid())?;
    let sign: u16 = if negative && !groups.is_empty() { 0x4000 } else { 0 };
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&u16::try_from(scale).map_err(|_| invalid())?.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Ok(())
}
