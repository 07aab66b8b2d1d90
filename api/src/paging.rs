//! Cursor paging of the inventory lists (clusters, instances, volumes, snapshots).
//!
//! The lists are filtered and sorted on computed figures (run rate, health, efficiency), so a
//! page is cut after sorting: each row has a sort key and its id (the tie-breaker), and the
//! cursor is the opaque (sort, key, id) of the last row handed out. The next page holds the
//! rows strictly after it in the same order, so rows added or removed in between neither
//! repeat nor shift the rest (keyset paging, not offsets). A cursor is only valid with the sort
//! it was made for. Pages hold at most [`MAX_PAGE`] rows.

use std::cmp::Ordering;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The largest page the inventory lists hand out (`limit`).
pub const MAX_PAGE: i64 = 500;
/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: i64 = 100;

/// A row's position in its list's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortKey {
    Int(i64),
    Num(f64),
    Text(String),
}

impl SortKey {
    fn cmp(&self, o: &SortKey) -> Ordering {
        match (self, o) {
            (SortKey::Int(a), SortKey::Int(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Int(a), SortKey::Num(b)) => (*a as f64).total_cmp(b),
            (SortKey::Num(a), SortKey::Int(b)) => a.total_cmp(&(*b as f64)),
            (SortKey::Text(_), _) => Ordering::Greater,
            (_, SortKey::Text(_)) => Ordering::Less,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The sort the cursor was made for (`name`, `-cost`, ...).
    s: String,
    k: SortKey,
    i: String,
}

/// Validates `limit` (1..=[`MAX_PAGE`], default [`DEFAULT_PAGE`]).
pub fn limit(limit: Option<i64>) -> Result<usize, ApiError> {
    let l = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&l) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(l as usize)
}

fn decode(sort: &str, cursor: &str) -> Result<Cursor, ApiError> {
    let invalid = || {
        ApiError::field(
            "cursor",
            "cursor is not valid (pass the next_cursor of the previous page)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let c: Cursor = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    if c.s != sort {
        return Err(ApiError::field(
            "cursor",
            "cursor belongs to another sort order; start again without it",
        ));
    }
    Ok(c)
}

fn encode(sort: &str, key: &SortKey, id: &str) -> String {
    let c = Cursor {
        s: sort.to_string(),
        k: key.clone(),
        i: id.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// Sorts `rows` (key, id, row) by key then id, descending when `desc`, and returns the page
/// after `cursor` of at most `limit` rows with the cursor of the next page (`None` on the
/// last). `sort` names the order (stored in the cursor).
pub fn page<T>(
    mut rows: Vec<(SortKey, String, T)>,
    sort: &str,
    desc: bool,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let order = |a: &SortKey, ai: &str, b: &SortKey, bi: &str| {
        let o = a.cmp(b).then_with(|| ai.cmp(bi));
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    rows.sort_by(|a, b| order(&a.0, &a.1, &b.0, &b.1));
    if let Some(c) = cursor.filter(|c| !c.is_empty()) {
        let c = decode(sort, c)?;
        rows.retain(|r| order(&r.0, &r.1, &c.k, &c.i) == Ordering::Greater);
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(k, id, _)| encode(sort, k, id))
    } else {
        None
    };
    Ok((rows.into_iter().map(|(_, _, t)| t).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: i64) -> Vec<(SortKey, String, i64)> {
        (0..n)
            .map(|i| (SortKey::Int(i % 3), format!("id-{i:03}"), i))
            .collect()
    }

    #[test]
    fn pages_cover_every_row_once_in_order() {
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let (items, next) = page(rows(10), "x", desc, cursor.as_deref(), 3).expect("page");
                assert!(items.len() <= 3);
                seen.extend(items);
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            let (all, none) = page(rows(10), "x", desc, None, 500).expect("all");
            assert_eq!(none, None);
            assert_eq!(seen, all);
            assert_eq!(seen.len(), 10);
        }
    }

    #[test]
    fn a_row_removed_between_pages_does_not_shift_the_rest() {
        let (first, next) = page(rows(9), "x", false, None, 4).expect("first");
        let mut fewer = rows(9);
        fewer.retain(|r| r.2 != first[0]);
        let (second, _) = page(fewer, "x", false, next.as_deref(), 4).expect("second");
        let (all, _) = page(rows(9), "x", false, None, 500).expect("all");
        assert_eq!(second, all[4..8].to_vec());
    }

    #[test]
    fn bad_cursors_and_limits_name_the_field() {
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_PAGE + 1)).is_err());
        assert_eq!(limit(None).expect("default"), DEFAULT_PAGE as usize);
        let e = page(rows(3), "x", false, Some("!!"), 2).expect_err("garbage");
        assert_eq!(e.code(), "validation_failed");
        let (_, next) = page(rows(3), "name", false, None, 2).expect("page");
        let e = page(rows(3), "-cost", false, next.as_deref(), 2).expect_err("other sort");
        assert!(e.to_string().contains("sort"), "{e}");
    }
}
