//! Robust statistics shared by the detectors: median, median absolute deviation, and a
//! robust z-score that stays finite when the spread is zero.

/// Largest magnitude a robust z-score takes (keeps scores finite and comparable).
pub const MAX_Z: f64 = 1.0e6;

/// The median of sorted, finite values (`None` when empty).
pub fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// The median of finite values in any order.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    median_sorted(&v)
}

/// Location and scale of a sample: the median and a robust spread (1.4826 x MAD; when the
/// MAD is zero, 1.2533 x the mean absolute deviation; when that is zero too, 5% of the
/// median's magnitude, at least 1e-9), computed from the sorted values so the result does
/// not depend on the input order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Robust {
    /// The median.
    pub median: f64,
    /// The median absolute deviation (unscaled).
    pub mad: f64,
    /// The scale used for z-scores.
    pub scale: f64,
}

impl Robust {
    /// The robust location and scale of `values` (`None` when empty).
    pub fn of(values: &[f64]) -> Option<Robust> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let median = median_sorted(&v)?;
        let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = median_sorted(&dev)?;
        let scale = if mad > 0.0 {
            1.4826 * mad
        } else {
            let mean_ad = dev.iter().sum::<f64>() / dev.len() as f64;
            if mean_ad > 0.0 {
                1.2533 * mean_ad
            } else {
                (median.abs() * 0.05).max(1e-9)
            }
        };
        Some(Robust { median, mad, scale })
    }

    /// The robust z-score of `x`, clamped to `±MAX_Z`.
    pub fn z(&self, x: f64) -> f64 {
        let z = (x - self.median) / self.scale;
        if z.is_nan() {
            0.0
        } else {
            z.clamp(-MAX_Z, MAX_Z)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn robust_scale_ignores_one_outlier_and_never_is_zero() {
        let r = Robust::of(&[10.0, 11.0, 9.0, 10.0, 1000.0]).unwrap();
        assert_eq!(r.median, 10.0);
        assert_eq!(r.mad, 1.0);
        assert!((r.scale - 1.4826).abs() < 1e-12);
        let flat = Robust::of(&[5.0, 5.0, 5.0]).unwrap();
        assert!(flat.scale > 0.0);
        assert_eq!(flat.z(5.0), 0.0);
        assert!(flat.z(6.0) > 3.0);
        let zero = Robust::of(&[0.0, 0.0]).unwrap();
        assert!(zero.z(1.0).is_finite() && zero.z(1.0) == MAX_Z);
    }
}
