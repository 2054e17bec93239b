//! COCO run-length encoding of binary masks, as pycocotools writes it: counts of alternating
//! runs (background first) over the pixels in column-major order, and the compressed string form
//! (`rleToString` / `rleFrString`). Training reads it from COCO annotations; the server returns
//! masks in it on request.

use serde::{Deserialize, Serialize};

/// A mask in COCO's uncompressed-counts form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rle {
    /// `[height, width]`, COCO's order.
    pub size: [usize; 2],
    pub counts: Vec<u64>,
}

/// Encodes the pixels where `on(row-major index)` holds, for a `width × height` image.
pub fn encode(width: usize, height: usize, on: impl Fn(usize) -> bool) -> Rle {
    let mut counts = Vec::new();
    let mut current = false;
    let mut run = 0u64;
    for x in 0..width {
        for y in 0..height {
            let value = on(y * width + x);
            if value != current {
                counts.push(run);
                run = 0;
                current = value;
            }
            run += 1;
        }
    }
    counts.push(run);
    Rle {
        size: [height, width],
        counts,
    }
}

/// The compressed string of `counts` (pycocotools' `rleToString`): each count after the second
/// as a difference from the count two before, in 5-bit groups with a continuation bit, offset
/// by 48 into printable ASCII.
pub fn to_string(counts: &[u64]) -> String {
    let mut out = String::new();
    for (i, &count) in counts.iter().enumerate() {
        let mut x = count as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut c = x & 0x1f;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            out.push(char::from(c as u8 + 48));
            if !more {
                break;
            }
        }
    }
    out
}

/// pycocotools' compressed counts (`rleFrString`): 5 bits per character with a continuation
/// bit, sign-extended, and each count after the second stored as a difference.
pub fn from_string(s: &str) -> Result<Vec<u64>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let mut x: i64 = 0;
        let mut k = 0;
        loop {
            let c = bytes[p]
                .checked_sub(48)
                .filter(|c| *c < 64)
                .ok_or("invalid RLE character")? as i64;
            x |= (c & 0x1f) << (5 * k);
            p += 1;
            k += 1;
            let more = c & 0x20 != 0;
            if !more {
                if c & 0x10 != 0 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
            if p >= bytes.len() || k > 12 {
                return Err("truncated RLE string".into());
            }
        }
        if counts.len() > 2 {
            x += counts[counts.len() - 2];
        }
        counts.push(x);
    }
    counts
        .into_iter()
        .map(|c| u64::try_from(c).map_err(|_| "negative RLE count".to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_strings_match_pycocotools() {
        // pycocotools.mask.encode of a 4×4 mask with a 2×2 square at rows 1–2, cols 1–2:
        // counts [5, 2, 2, 2, 5] → b'52203'.
        assert_eq!(from_string("52203").unwrap(), vec![5, 2, 2, 2, 5]);
        assert_eq!(to_string(&[5, 2, 2, 2, 5]), "52203");
        // Large counts use continuation characters: 100 = 3·32 + 4 → 'T' (4 + 32 + 48), '3'.
        assert_eq!(from_string("T3").unwrap(), vec![100]);
        assert_eq!(to_string(&[100]), "T3");
        // Negative differences (a count smaller than the one two before).
        let counts = [132, 8, 24, 8, 24, 8, 3, 8, 660];
        assert_eq!(from_string(&to_string(&counts)).unwrap(), counts);
        assert!(from_string("5\u{7f}").is_err());
    }

    #[test]
    fn encoding_is_column_major_and_starts_with_background() {
        // 3 wide, 2 high; on: (x=1, y=0) and (x=0, y=1).
        let mask = [false, true, false, true, false, false];
        let rle = encode(3, 2, |i| mask[i]);
        assert_eq!(rle.size, [2, 3]);
        assert_eq!(rle.counts, vec![1, 2, 3]);
        // A mask whose first pixel is on starts with an empty background run.
        assert_eq!(encode(1, 2, |_| true).counts, vec![0, 2]);
    }
}
