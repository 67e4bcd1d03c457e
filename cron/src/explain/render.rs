//! Value sets as cron field text the parser reads back (`*`, `*/n`, `a-b/n`, ranges, lists).

pub(super) fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |b| mask & (1 << b) != 0)
}

/// Render a value set (`bits` between `min` and `max`, no day-of-week 7) as cron field text:
/// `*` when full and `allow_star`, `*/n` or `a-b/n` for progressions, else ranges and values.
pub(super) fn render(set: u64, min: u32, max: u32, allow_star: bool) -> String {
    let vals: Vec<u32> = bits(set).filter(|v| (min..=max).contains(v)).collect();
    let full = vals.len() as u32 == max - min + 1;
    if full {
        return if allow_star { "*".into() } else { format!("{min}-{max}") };
    }
    if allow_star && let Some(text) = star_step(set, min, max) {
        return text;
    }
    if vals.len() >= 3 {
        let step = vals[1] - vals[0];
        if step >= 2 && vals.windows(2).all(|w| w[1] - w[0] == step) {
            return format!("{}-{}/{step}", vals[0], vals[vals.len() - 1]);
        }
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < vals.len() {
        let mut j = i;
        while j + 1 < vals.len() && vals[j + 1] == vals[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", vals[i], vals[j]));
            i = j + 1;
        } else {
            parts.push(vals[i].to_string());
            i += 1;
        }
    }
    parts.join(",")
}

/// `*/n` whose values (the parser's, over `min..=max`) are exactly `set`.
fn star_step(set: u64, min: u32, max: u32) -> Option<String> {
    if set.count_ones() < 2 {
        return None; // a single value reads better as itself
    }
    // Day-of-week is rendered 0-6 but the parser's `*/n` runs over 0-7 with 7 = Sunday.
    let parse_max = if min == 0 && max == 6 { 7 } else { max };
    (2..=parse_max - min + 1).find_map(|n| {
        let mut got = 0u64;
        let mut v = min;
        while v <= parse_max {
            got |= 1 << if parse_max == 7 && v == 7 { 0 } else { v };
            v += n;
        }
        (got == set).then(|| format!("*/{n}"))
    })
}

/// Field text beginning with `*` (which keeps crontab's AND day rule) for `set`, if any:
/// `*`, `*/n`, or `*/<span>` (the minimum alone) followed by the other values.
pub(super) fn render_starred(set: u64, min: u32, parse_max: u32) -> Option<String> {
    let max = if parse_max == 7 { 6 } else { parse_max };
    if set & (1 << min) == 0 {
        return None;
    }
    let full = bits(set).filter(|v| (min..=max).contains(v)).count() as u32 == max - min + 1;
    if full {
        return Some("*".into());
    }
    if let Some(text) = star_step(set, min, max) {
        return Some(text);
    }
    let rest = set & !(1 << min);
    let only_min = format!("*/{}", parse_max - min + 1);
    Some(if rest == 0 { only_min } else { format!("{only_min},{}", render(rest, min, max, false)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CronExpr;

    #[test]
    fn renders_fields_the_parser_reads_back() {
        assert_eq!(render(0b1111, 0, 59, true), "0-3");
        assert_eq!(render(1 | 1 << 15 | 1 << 30 | 1 << 45, 0, 59, true), "*/15");
        assert_eq!(render(1 << 5 | 1 << 20 | 1 << 35 | 1 << 50, 0, 59, true), "5-50/15");
        assert_eq!(render(1 << 1 | 1 << 2 | 1 << 7, 0, 23, true), "1,2,7");
        assert_eq!(render(0x7f, 0, 6, false), "0-6");
        assert_eq!(render_starred(1 | 1 << 3 | 1 << 6, 0, 7).as_deref(), Some("*/3"));
        assert_eq!(render_starred(1 | 1 << 2, 0, 7).as_deref(), Some("*/8,2"));
        assert_eq!(render_starred(1 << 2, 1, 31), None);
        let c = CronExpr::parse("0 0 */31,5,9 * *").unwrap();
        assert_eq!(c.doms, 1 << 1 | 1 << 5 | 1 << 9);
    }
}
