//! Python's indexing and slicing of a sequence (`seq[i]`, `seq[:n]`, `seq[a:b]`, step 1):
//! negative positions count from the end, slices clamp to the sequence, an index out of range
//! is `None` where Python raises `IndexError`. graphite-web slices series values, name nodes
//! and sorted lists this way.

/// Python's `seq[i]`: a negative `i` counts from the end; `None` where Python raises
/// `IndexError`.
pub fn index<T>(seq: &[T], i: i64) -> Option<&T> {
    let len = seq.len() as i64;
    let i = if i < 0 { i.checked_add(len)? } else { i };
    if (0..len).contains(&i) {
        seq.get(i as usize)
    } else {
        None
    }
}

/// The end of Python's slice `seq[:n]` for a sequence of `len` items (a negative `n` counts
/// from the end; out-of-range values clamp).
pub fn slice_end(len: usize, n: i64) -> usize {
    let len_i = len as i64;
    let end = if n < 0 { len_i.saturating_add(n) } else { n };
    end.clamp(0, len_i) as usize
}

/// Python's slice `seq[start:stop]` bounds (step 1) for a sequence of `len` items: negative
/// indices count from the end, out-of-range ones clamp. Returns `start..stop` (empty when
/// `stop <= start`).
pub fn slice_range(len: usize, start: Option<i64>, stop: Option<i64>) -> std::ops::Range<usize> {
    let n = len as i64;
    let clamp = |i: i64| -> usize {
        let i = if i < 0 { i + n } else { i };
        i.clamp(0, n) as usize
    };
    let a = start.map(clamp).unwrap_or(0);
    let b = stop.map(clamp).unwrap_or(len);
    a..b.max(a)
}

/// Python's `seq[i]`: negative indices count from the end; `None` where Python raises
/// `IndexError`.
pub fn index_of(len: usize, i: i64) -> Option<usize> {
    let n = len as i64;
    let j = if i < 0 { i + n } else { i };
    (0..n).contains(&j).then_some(j as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_slices_as_python() {
        assert_eq!(slice_range(5, Some(-2), None), 3..5);
        assert_eq!(slice_range(5, None, Some(-7)), 0..0);
        assert_eq!(slice_range(5, Some(7), Some(9)), 5..5);
        assert_eq!(index_of(3, -1), Some(2));
        assert_eq!(index_of(3, 3), None);
        assert_eq!(index(&[1, 2, 3], -1), Some(&3));
        assert_eq!(index(&[1, 2, 3], 3), None);
        assert_eq!(index(&[1, 2, 3], i64::MIN), None);
        assert_eq!(slice_end(3, -1), 2);
        assert_eq!(slice_end(3, i64::MAX), 3);
        assert_eq!(slice_end(3, i64::MIN), 0);
    }
}
