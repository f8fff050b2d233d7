//! Element-wise f32 math written so that the compiler vectorises it: no calls into libm, no
//! branches (selects only), reductions split over eight independent lanes. Each public kernel
//! works on a whole slice and runs a copy compiled for AVX2 where the CPU has it (eight lanes
//! instead of SSE2's four). Both copies do the same operations in the same order (plain
//! multiplies and adds, never fused), so results do not depend on which one ran.

/// Defines `pub(super) fn $name` that runs `$body` (an `#[inline(always)]` function) compiled
/// for AVX2 when the CPU supports it, and as compiled for the baseline target otherwise.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident) => {
        $(#[$doc])*
        pub(super) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

const LANES: usize = 8;

/// e^x in f32, Cephes' `expf`: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7
/// polynomial, 2^n put straight into the exponent bits. Relative error within 2 ulp over
/// the normal range; inputs are clamped to it (so e^-∞ is 1.2e-38, not 0); NaN stays NaN.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    let clamped = x.clamp(-87.3, 88.3);
    let t = clamped * LOG2E + ROUND;
    let n = t - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + *c;
    }
    let e_r = p * (r * r) + r + 1.0;
    // n is in [-126, 127]: a normal power of two.
    let n_bits = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let two_n = f32::from_bits((n_bits.wrapping_add(127) << 23) as u32);
    if x.is_nan() {
        x
    } else {
        e_r * two_n
    }
}

/// GELU with the tanh approximation, 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³),
/// written as x / (1 + e^(-2u)): the same function, without the cancellation of 1 + tanh(u)
/// for negative x.
#[inline(always)]
pub(super) fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

#[inline(always)]
fn gelu_tanh_body(xs: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(xs) {
        *o = gelu_tanh(*x);
    }
}

#[inline(always)]
fn gelu_tanh_mul_body(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
        *o = gelu_tanh(*g) * *u;
    }
}

/// The largest element; −∞ for an empty slice.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, x) in lanes.iter_mut().zip(chunk) {
            *m = if *x > *m { *x } else { *m };
        }
    }
    for x in rest {
        lanes[0] = if *x > lanes[0] { *x } else { lanes[0] };
    }
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// The sum of the elements, in eight interleaved partial sums.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (s, x) in lanes.iter_mut().zip(chunk) {
            *s += *x;
        }
    }
    for x in rest {
        lanes[0] += *x;
    }
    lanes.into_iter().sum()
}

/// Replaces each element by e^(x - max) and returns their sum (in a fixed order).
#[inline(always)]
fn exp_shifted_sum(xs: &mut [f32], max: f32) -> f32 {
    // Two passes over data in cache: a plain map and a plain sum vectorise, the two fused
    // in one loop did not.
    for x in xs.iter_mut() {
        *x = exp(*x - max);
    }
    sum(xs)
}

#[inline(always)]
fn softmax_numerators_body(scores: &mut [f32], width: usize, sums: &mut [f32]) {
    for (row, sum) in scores.chunks_exact_mut(width).zip(sums.iter_mut()) {
        let m = max(row);
        *sum = exp_shifted_sum(row, m);
    }
}

#[inline(always)]
fn scale_rows_body(rows: &mut [f32], width: usize, stride: usize, factors: &[f32]) {
    for (i, f) in factors.iter().enumerate() {
        for x in &mut rows[i * stride..i * stride + width] {
            *x *= *f;
        }
    }
}

vectorised! {
    /// `out[i] = gelu_tanh(xs[i])`.
    fn gelu_tanh_slice(xs: &[f32], out: &mut [f32]) = gelu_tanh_body
}

vectorised! {
    /// `out[i] = gelu_tanh(gate[i]) · up[i]` (the gated GELU of T5 feed-forwards).
    fn gelu_tanh_mul_slice(gate: &[f32], up: &[f32], out: &mut [f32]) = gelu_tanh_mul_body
}

vectorised! {
    /// For each row of `width` scores: e^(s − row max) in place, the row's sum in `sums`.
    /// The softmax is these numerators divided by the sum.
    fn softmax_numerators(scores: &mut [f32], width: usize, sums: &mut [f32]) = softmax_numerators_body
}

vectorised! {
    /// Multiplies the first `width` values of each row (rows `stride` apart) by its factor.
    fn scale_rows(rows: &mut [f32], width: usize, stride: usize, factors: &[f32]) = scale_rows_body
}

#[cfg(test)]
mod tests {
    use super::*;

    /// -87 to 88 in steps of 0.045: the range where e^x is a normal f32.
    fn inputs() -> impl Iterator<Item = f32> {
        (-1933..=1955).map(|i| i as f32 * 0.045)
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64() {
        for x in inputs().chain([-87.0, -80.5, 0.0, 1e-8, -1e-8, 88.0]) {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(f32::NEG_INFINITY) < 1.3e-38);
    }

    #[test]
    fn gelu_matches_the_tanh_formula_in_f64() {
        for x in (-400..=400).map(|i| i as f32 * 0.0375) {
            let x64 = x as f64;
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            let want = 0.5 * x64 * (1.0 + u.tanh());
            let got = gelu_tanh(x) as f64;
            // Where GELU is tiny next to x, the f32 rounding of u (a relative 1e-7, times
            // |2u| in e^(-2u)) dominates: there the error counts against |x|.
            let bound = if want.abs() >= 0.01 * x64.abs() {
                1e-6 * want.abs()
            } else {
                1e-8 * x64.abs()
            };
            assert!(
                (got - want).abs() <= bound,
                "gelu({x}) = {got}, want {want}"
            );
        }
        let mut out = [0f32; 4];
        gelu_tanh_slice(&[-1e4, 0.0, 1e4, f32::NAN], &mut out);
        assert!(out[0] <= 0.0 && out[0] > -1e-30);
        assert_eq!(out[1..3], [0.0, 1e4]);
        assert!(out[3].is_nan());
    }

    #[test]
    fn softmax_numerators_sum_per_row() {
        let width = 19;
        let mut scores: Vec<f32> = (0..3 * width)
            .map(|i| (i as f32 * 0.37).sin() * 9.0)
            .collect();
        let original = scores.clone();
        let mut sums = [0f32; 3];
        softmax_numerators(&mut scores, width, &mut sums);
        for r in 0..3 {
            let row = &original[r * width..(r + 1) * width];
            // The row's maximum, and each difference to it, in f32 as the kernel has them.
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let exps: Vec<f64> = row.iter().map(|&s| ((s - m) as f64).exp()).collect();
            let sum: f64 = exps.iter().sum();
            assert!((sums[r] as f64 - sum).abs() < 1e-6 * sum);
            for (got, want) in scores[r * width..(r + 1) * width].iter().zip(&exps) {
                assert!((*got as f64 - want).abs() < 3e-7 * want.max(1e-30));
            }
        }
    }
}
