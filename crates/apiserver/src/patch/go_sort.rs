//! Go's `sort.SliceStable`, step for step (insertion sort over blocks of 20, then
//! `symMerge`): the strategic merge orders list items with a comparison that is not a strict
//! order (an item it cannot place is "less" than any other), so only the same algorithm
//! gives the same order Kubernetes gives.

/// Sorts `items` as Go's `sort.SliceStable(items, less)` would.
pub(super) fn slice_stable<T>(items: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = items.len();
    let less_at = |items: &[T], i: usize, j: usize| less(&items[i], &items[j]);
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(items, a, b, &less_at);
        a = b;
        b += block;
    }
    insertion_sort(items, a, n, &less_at);
    while block < n {
        let (mut a, mut b) = (0, 2 * block);
        while b <= n {
            sym_merge(items, a, a + block, b, &less_at);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(items, a, m, n, &less_at);
        }
        block *= 2;
    }
}

type Less<'a, T> = &'a dyn Fn(&[T], usize, usize) -> bool;

fn insertion_sort<T>(items: &mut [T], a: usize, b: usize, less: Less<'_, T>) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(items, j, j - 1) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge<T>(items: &mut [T], a: usize, m: usize, b: usize, less: Less<'_, T>) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(items, h, a) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i.saturating_sub(1) {
            items.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(items, m, h) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            items.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(items, p - c, c) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(items, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(items, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(items, mid, end, b, less);
    }
}

fn rotate<T>(items: &mut [T], a: usize, m: usize, b: usize) {
    let (mut i, mut j) = (m - a, b - m);
    while i != j {
        if i > j {
            swap_range(items, m - i, m, j);
            i -= j;
        } else {
            swap_range(items, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(items, m - i, m, i);
}

fn swap_range<T>(items: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        items.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strict_order_sorts_stably_at_every_length() {
        for n in [0, 1, 2, 19, 20, 21, 40, 41, 95] {
            // (key, original position): equal keys must keep their order.
            let mut items: Vec<(u32, usize)> =
                (0..n).map(|i| (((i * 7919) % 13) as u32, i)).collect();
            let mut want = items.clone();
            want.sort_by_key(|(k, _)| *k);
            slice_stable(&mut items, |a, b| a.0 < b.0);
            assert_eq!(items, want, "n = {n}");
        }
    }

    #[test]
    fn an_item_the_order_cannot_place_moves_as_in_go() {
        // The strategic merge's comparison: "both ranked and in order, else true". With 9
        // unranked, the insertion sort's swaps carry it to the end, as Go's do.
        let rank = |x: &i32| [1, 2].iter().position(|k| k == x);
        let mut items = vec![9, 2, 1];
        slice_stable(&mut items, |a, b| match (rank(a), rank(b)) {
            (Some(x), Some(y)) => x < y,
            _ => true,
        });
        assert_eq!(items, [1, 2, 9]);
    }
}
