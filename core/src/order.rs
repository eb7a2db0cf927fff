//! Stable sorting through one shared copy of the standard library's sort, for short or cold
//! lists (library size).
//!
//! `slice::sort_by` is generic over the element type and the comparison: each call site gets a
//! copy of the whole stable sort (≈ 4 KB of machine code each in the mobile library). [`sort_by`]
//! sorts a permutation of `usize` positions with a `dyn` comparison instead — one copy of the sort
//! for every caller — and then moves the elements into that order. The result is the stable
//! sort's, element for element: a stable sort's output is unique (equal elements keep their
//! order), whichever algorithm computes it. Hot paths (records by time, a bill's uses) keep
//! `sort_by`: the `dyn` call per comparison and the position vector cost time there.

use std::cmp::Ordering;

/// Sort `v` stably by `cmp`: the same order as `v.sort_by(cmp)` (equal elements keep their
/// order). Allocates a `usize` per element (positions) and an `Option<T>` per element while the
/// elements move. Does not panic (a `cmp` that panics propagates, as with `sort_by`).
pub fn sort_by<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut positions: Vec<usize> = (0..v.len()).collect();
    let items: &[T] = v;
    sort_positions(&mut positions, &mut |a, b| match (items.get(a), items.get(b)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    });
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(positions.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)));
}

/// The one instantiation of the standard stable sort behind [`sort_by`].
#[inline(never)]
fn sort_positions(positions: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    positions.sort_by(|&a, &b| cmp(a, b));
}

#[cfg(test)]
mod tests {
    use super::sort_by;

    /// The same order as `sort_by`, equal elements included, on lists with many ties.
    #[test]
    fn matches_the_standard_stable_sort() {
        let mut seed = 7u64;
        for len in [0usize, 1, 2, 3, 10, 33, 200, 1000] {
            let v: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    ((seed >> 59) as u8, i)
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by_key(|a| a.0);
            let mut got = v.clone();
            sort_by(&mut got, |a, b| a.0.cmp(&b.0));
            assert_eq!(got, expected, "length {len}");
            let mut reversed = v;
            sort_by(&mut reversed, |a, b| b.0.cmp(&a.0));
            assert!(reversed.windows(2).all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)));
        }
    }

    /// Elements that own memory move, none is dropped or doubled.
    #[test]
    fn moves_owned_elements() {
        let mut v: Vec<String> = ["pear", "apple", "fig", "apple", "kiwi"].iter().map(|s| (*s).to_string()).collect();
        sort_by(&mut v, |a, b| a.len().cmp(&b.len()));
        assert_eq!(v, ["fig", "pear", "kiwi", "apple", "apple"]);
    }
}
