//! Hex arguments: input may carry `0x` and any case; output is lowercase without prefix.

/// Decodes a hex argument named `what`.
pub(crate) fn parse(what: &str, s: &str) -> Result<Vec<u8>, String> {
    let body = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if !body.len().is_multiple_of(2) {
        return Err(format!("{what} is not valid hex: odd number of digits"));
    }
    hex::decode(body).map_err(|_| format!("{what} is not valid hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prefix_and_any_case() {
        assert_eq!(parse("m", "0xAbCd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse("m", "0XABCD").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse("m", "").unwrap(), Vec::<u8>::new());
        assert!(parse("m", "abc").is_err());
        assert!(parse("m", "zz").is_err());
        assert!(parse("m", "0x0x00").is_err());
    }
}
