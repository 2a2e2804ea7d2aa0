//! `/sync` tokens: one position per stream, written `s<pos>_<pos>...` in a fixed order.
//! New streams are appended, so tokens handed out before an upgrade still parse (missing
//! positions read as 0).

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncToken {
    pub account_data: i64,
}

impl SyncToken {
    pub fn parse(s: &str) -> Result<SyncToken> {
        let bad = || Error::InvalidParam(format!("Invalid sync token {s:?}"));
        let rest = s.strip_prefix('s').ok_or_else(bad)?;
        let mut parts = rest.split('_').map(|p| p.parse::<i64>().map_err(|_| bad()));
        let account_data = parts.next().ok_or_else(bad)??;
        if account_data < 0 {
            return Err(bad());
        }
        Ok(SyncToken { account_data })
    }

    /// Whether anything in `self` is past `since`.
    pub fn is_after(&self, since: &SyncToken) -> bool {
        self.account_data > since.account_data
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.account_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let t = SyncToken { account_data: 42 };
        assert_eq!(SyncToken::parse(&t.to_string()).expect("parse"), t);
        assert_eq!(SyncToken::parse("s7_3_9").expect("later tokens parse").account_data, 7);
        for bad in ["", "s", "x1", "s-1", "s1a", "s99999999999999999999"] {
            assert!(SyncToken::parse(bad).is_err(), "{bad}");
        }
    }
}
