//! `/sync` tokens: one position per stream, written `s<pos>_<pos>_...` in a fixed order.
//! New streams are appended, so tokens handed out before an upgrade still parse (missing
//! positions read as 0).

use crate::error::{Error, Result};

/// The streams, in token order. Each has a row in the `streams` table, except `typing`,
/// which lives in memory.
pub const STREAMS: &[&str] =
    &["account_data", "events", "to_device", "device_lists", "receipts", "presence", "typing"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncToken {
    pub account_data: i64,
    pub events: i64,
    pub to_device: i64,
    pub device_lists: i64,
    pub receipts: i64,
    pub presence: i64,
    pub typing: i64,
}

impl SyncToken {
    fn fields(&self) -> [i64; 7] {
        [
            self.account_data,
            self.events,
            self.to_device,
            self.device_lists,
            self.receipts,
            self.presence,
            self.typing,
        ]
    }

    fn from_fields(f: [i64; 7]) -> SyncToken {
        SyncToken {
            account_data: f[0],
            events: f[1],
            to_device: f[2],
            device_lists: f[3],
            receipts: f[4],
            presence: f[5],
            typing: f[6],
        }
    }

    pub fn parse(s: &str) -> Result<SyncToken> {
        let bad = || Error::InvalidParam(format!("Invalid sync token {s:?}"));
        let rest = s.strip_prefix('s').ok_or_else(bad)?;
        let mut f = [0i64; 7];
        for (i, part) in rest.split('_').enumerate() {
            let v = part.parse::<i64>().map_err(|_| bad())?;
            if v < 0 || i >= f.len() {
                return Err(bad());
            }
            f[i] = v;
        }
        Ok(SyncToken::from_fields(f))
    }

    /// Whether any stream in `self` is past `since`.
    pub fn is_after(&self, since: &SyncToken) -> bool {
        self.fields().iter().zip(since.fields()).any(|(a, b)| *a > b)
    }

    /// Whether a stored stream in `self` is ahead of what the server has handed out (a
    /// token from the future or from another server). Typing lives in memory and restarts
    /// from 0, so it is not compared.
    pub fn exceeds(&self, current: &SyncToken) -> bool {
        self.fields()[..6].iter().zip(&current.fields()[..6]).any(|(a, b)| a > b)
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.fields().iter().map(i64::to_string).collect();
        write!(f, "s{}", parts.join("_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let t = SyncToken { account_data: 42, events: 7, typing: 3, ..Default::default() };
        assert_eq!(SyncToken::parse(&t.to_string()).expect("parse"), t);
        let old = SyncToken::parse("s7").expect("shorter tokens parse");
        assert_eq!((old.account_data, old.events), (7, 0));
        for bad in ["", "s", "x1", "s-1", "s1a", "s99999999999999999999", "s1_2_3_4_5_6_7_8"] {
            assert!(SyncToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ordering() {
        let a = SyncToken { events: 5, ..Default::default() };
        let b = SyncToken { events: 5, to_device: 1, ..Default::default() };
        assert!(b.is_after(&a) && !a.is_after(&b) && !a.is_after(&a));
        assert!(b.exceeds(&a));
        let typing_ahead = SyncToken { typing: 9, ..Default::default() };
        assert!(!typing_ahead.exceeds(&a), "typing restarts with the server");
    }
}
