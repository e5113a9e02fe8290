//! Retention of the expired archive.
//!
//! The original moved expired images into `expired/` and never pruned it, so
//! the archive grew until the disk was full. [`plan_retention`] is the pure
//! decision (entries, policy and time in; entries to delete out);
//! [`CacheStore::apply_retention`](super::CacheStore::apply_retention)
//! deletes them.

use super::names::ImageKey;
use super::record::ExpireReason;
use jiff::Timestamp;
use std::time::Duration;

/// Limits on the expired archive. `None` means no limit of that kind; the
/// default keeps everything (as the original did), so pruning is opt-in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep at most this many entries.
    pub max_count: Option<usize>,
    /// Delete entries that expired longer ago than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many bytes of expired images.
    pub max_bytes: Option<u64>,
}

/// One entry of the expired archive (`expired/<ns>/<sub>/<name>/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredEntry {
    /// The image it held.
    pub key: ImageKey,
    /// The entry's directory name (`<timestamp>-<image-id>`).
    pub name: String,
    /// When it expired (from its record; the directory's modification time
    /// when the record is unreadable).
    pub expired_at: Timestamp,
    /// Why, when known.
    pub reason: Option<ExpireReason>,
    /// Bytes of its image file (0 when it has none).
    pub bytes: u64,
}

/// Chooses the entries to delete: oldest first (ties broken by key and
/// name, for determinism) until every limit holds. Entries older than
/// `max_age` always go; entries "from the future" (clock skew) count as new.
/// The result is ordered oldest first.
pub fn plan_retention(
    entries: &[ExpiredEntry],
    policy: &RetentionPolicy,
    now: Timestamp,
) -> Vec<ExpiredEntry> {
    let mut sorted: Vec<&ExpiredEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (a.expired_at, &a.key, &a.name).cmp(&(b.expired_at, &b.key, &b.name)));

    let too_old = |e: &ExpiredEntry| -> bool {
        let Some(max_age) = policy.max_age else {
            return false;
        };
        let age = now.duration_since(e.expired_at);
        // Negative ages (entries from the future) fail the conversion: new.
        Duration::try_from(age).is_ok_and(|age| age > max_age)
    };

    let mut count = sorted.len();
    // u128: a sum of u64 sizes cannot overflow it, so no entry is forgotten.
    let mut bytes: u128 = sorted.iter().map(|e| u128::from(e.bytes)).sum();
    let mut delete = Vec::new();
    for entry in sorted {
        let over_count = policy.max_count.is_some_and(|max| count > max);
        let over_bytes = policy.max_bytes.is_some_and(|max| bytes > u128::from(max));
        if !(too_old(entry) || over_count || over_bytes) {
            // Sorted oldest first: if this one may stay, so may the rest
            // (they are younger, and count/bytes only shrink).
            break;
        }
        count -= 1;
        bytes = bytes.saturating_sub(u128::from(entry.bytes));
        delete.push(entry.clone());
    }
    delete
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const DAY: i64 = 86_400;

    fn entry(name: &str, age_days: i64, bytes: u64) -> ExpiredEntry {
        ExpiredEntry {
            key: ImageKey::parse("ns", "sub", name).unwrap(),
            name: format!("x-{name}"),
            expired_at: Timestamp::from_second(NOW - age_days * DAY).unwrap(),
            reason: Some(ExpireReason::RemovedFromList),
            bytes,
        }
    }

    fn names(v: &[ExpiredEntry]) -> Vec<&str> {
        v.iter().map(|e| e.key.image.as_str()).collect()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }

    #[test]
    fn default_policy_keeps_everything() {
        let entries = vec![entry("a", 1000, 1 << 40), entry("b", 1, 1)];
        assert!(plan_retention(&entries, &RetentionPolicy::default(), now()).is_empty());
    }

    #[test]
    fn by_count_oldest_first() {
        let entries = vec![entry("new", 1, 1), entry("old", 3, 1), entry("mid", 2, 1)];
        let p = RetentionPolicy {
            max_count: Some(1),
            ..Default::default()
        };
        assert_eq!(
            names(&plan_retention(&entries, &p, now())),
            vec!["old", "mid"]
        );
        let p = RetentionPolicy {
            max_count: Some(0),
            ..Default::default()
        };
        assert_eq!(
            names(&plan_retention(&entries, &p, now())),
            vec!["old", "mid", "new"]
        );
        let p = RetentionPolicy {
            max_count: Some(3),
            ..Default::default()
        };
        assert!(plan_retention(&entries, &p, now()).is_empty());
    }

    #[test]
    fn by_age_strictly_older() {
        let entries = vec![
            entry("a", 10, 1),
            entry("b", 7, 1),
            entry("c", 6, 1),
            entry("future", -2, 1),
        ];
        let p = RetentionPolicy {
            max_age: Some(days(7)),
            ..Default::default()
        };
        // Exactly max_age old stays; older goes; future entries stay.
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a"]);
    }

    #[test]
    fn by_bytes_until_under_the_limit() {
        let entries = vec![entry("a", 3, 100), entry("b", 2, 50), entry("c", 1, 30)];
        let p = RetentionPolicy {
            max_bytes: Some(80),
            ..Default::default()
        };
        // Exactly at the limit is within it.
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a"]);
        let p = RetentionPolicy {
            max_bytes: Some(79),
            ..Default::default()
        };
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a", "b"]);
        let p = RetentionPolicy {
            max_bytes: Some(180),
            ..Default::default()
        };
        assert!(plan_retention(&entries, &p, now()).is_empty());
        let p = RetentionPolicy {
            max_bytes: Some(179),
            ..Default::default()
        };
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a"]);
    }

    #[test]
    fn all_limits_must_hold() {
        let entries = vec![
            entry("a", 30, 1),
            entry("b", 3, 1000),
            entry("c", 2, 1),
            entry("d", 1, 1),
        ];
        let p = RetentionPolicy {
            max_count: Some(3),
            max_age: Some(days(10)),
            max_bytes: Some(10),
        };
        // a: too old; then b must go for bytes; c, d fit.
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a", "b"]);
    }

    #[test]
    fn ties_are_deterministic() {
        let mut a = entry("a", 1, 1);
        let mut b = entry("b", 1, 1);
        a.expired_at = now();
        b.expired_at = now();
        let p = RetentionPolicy {
            max_count: Some(1),
            ..Default::default()
        };
        assert_eq!(
            names(&plan_retention(&[b.clone(), a.clone()], &p, now())),
            vec!["a"]
        );
        assert_eq!(names(&plan_retention(&[a, b], &p, now())), vec!["a"]);
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let entries = vec![entry("a", 2, u64::MAX), entry("b", 1, u64::MAX)];
        let p = RetentionPolicy {
            max_bytes: Some(u64::MAX - 1),
            ..Default::default()
        };
        assert_eq!(names(&plan_retention(&entries, &p, now())), vec!["a", "b"]);
    }
}
