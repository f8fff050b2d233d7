//! Gaussian noise equal, bit for bit, to `torch.manual_seed(s); torch.randn(shape)` on the CPU.
//!
//! Diffusers (with a CPU generator) and ComfyUI draw their initial latents this way, so the
//! same seed gives the same clip in GenClip as in those tools. What torch does, as read from
//! its sources and checked against its output (`tests/fixtures/torch_randn`, made by
//! `tools/torch_randn_fixtures.py`):
//!
//! - a Mersenne Twister (MT19937) seeded with the low 32 bits of the seed;
//! - tensors of 16 or more elements: every element first gets a 24-bit uniform
//!   `(u32 & 0xFFFFFF) / 2^24`; then Box-Muller runs over blocks of 16, pairing element `j`
//!   with `j + 8`; when the size is not a multiple of 16, the last 16 elements are drawn
//!   again and transformed as one more block;
//! - smaller tensors: a double-precision Box-Muller from 53-bit uniforms whose second value
//!   is kept in the generator for the next draw (even across tensors);
//! - the 16-element transform exists in two compiled forms that round differently, and
//!   torch picks one by the CPU it runs on ([`NormalForm`]); the portable one calls the C
//!   library's `logf`/`cosf`/`sinf`, so it matches torch run against the same C library.

/// The MT19937 Mersenne Twister, as torch seeds and tempers it.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// Which compiled form of torch's 16-element Box-Muller to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalForm {
    /// torch's portable kernel, with the C library's logf/cosf/sinf: CPUs without AVX2 and
    /// FMA (or `ATEN_CPU_CAPABILITY=default`).
    Portable,
    /// The AVX2 kernel, with polynomial log/sin/cos: every x86-64 CPU with AVX2 and FMA.
    /// torch's AVX-512 build runs this same kernel (checked against its output).
    Avx2,
}

impl NormalForm {
    /// The form torch itself uses on this CPU.
    pub fn of_this_cpu() -> NormalForm {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return NormalForm::Avx2;
        }
        NormalForm::Portable
    }
}

/// torch's CPU generator: the twister plus the cached second value of the small-tensor path.
#[derive(Clone)]
pub struct TorchGenerator {
    mt: Mt19937,
    next_double_normal: Option<f64>,
    form: NormalForm,
}

impl TorchGenerator {
    /// `torch.manual_seed(seed)`, drawing normals the way torch does on this CPU.
    pub fn manual_seed(seed: u64) -> TorchGenerator {
        Self::with_form(seed, NormalForm::of_this_cpu())
    }

    pub fn with_form(seed: u64, form: NormalForm) -> TorchGenerator {
        TorchGenerator {
            mt: Mt19937::new(seed as u32),
            next_double_normal: None,
            form,
        }
    }

    fn random(&mut self) -> u32 {
        self.mt.next_u32()
    }

    fn random64(&mut self) -> u64 {
        let hi = self.mt.next_u32() as u64;
        let lo = self.mt.next_u32() as u64;
        (hi << 32) | lo
    }

    /// A float uniform in [0, 1) from 24 random bits (exact in f32).
    fn uniform_f32(&mut self) -> f32 {
        (self.random() & 0x00ff_ffff) as f32 / (1u32 << 24) as f32
    }

    /// A double uniform in [0, 1) from 53 random bits.
    fn uniform_f64(&mut self) -> f64 {
        (self.random64() & ((1u64 << 53) - 1)) as f64 / (1u64 << 53) as f64
    }

    /// One standard normal from the small-tensor path.
    fn normal_f64(&mut self) -> f64 {
        if let Some(v) = self.next_double_normal.take() {
            return v;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// `torch.randn(shape)` as an f32 tensor on `device`.
    pub fn randn_tensor(
        &mut self,
        shape: &[usize],
        device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        let values = self.randn(shape.iter().product());
        candle_core::Tensor::from_vec(values, shape.to_vec(), device)
    }

    /// `torch.randn(n)` (any shape with `n` elements, contiguous), as f32.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n < 16 {
            return (0..n).map(|_| self.normal_f64() as f32).collect();
        }
        let mut data: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        for block in data.chunks_exact_mut(16) {
            box_muller_16(block.try_into().expect("16 elements"), self.form);
        }
        if n % 16 != 0 {
            let tail = &mut data[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            box_muller_16(tail.try_into().expect("16 elements"), self.form);
        }
        data
    }
}

/// Box-Muller over 16 uniforms in place: `j` and `j + 8` become a pair of normals.
fn box_muller_16(data: &mut [f32; 16], form: NormalForm) {
    match form {
        NormalForm::Portable => {
            for j in 0..8 {
                let u1 = 1.0 - data[j];
                let u2 = data[j + 8];
                let radius = (-2.0 * u1.ln()).sqrt();
                let theta = (2.0 * std::f64::consts::PI * u2 as f64) as f32;
                data[j] = radius * theta.cos();
                data[j + 8] = radius * theta.sin();
            }
        }
        NormalForm::Avx2 => avx2::box_muller_16(data),
    }
}

/// Scalar emulation of torch's AVX2 kernel: Cephes-style polynomials in 8 float lanes
/// (torch's `avx_mathfun.h`). The wheel's compiler fuses each multiply that feeds an add
/// into one FMA; where two multiplies feed the same add, which one it fused was settled
/// against torch's output and is noted below. Constants go through f64 as the C source's
/// double literals do (so they keep the source's digits).
#[allow(clippy::excessive_precision)]
mod avx2 {
    const fn c(v: f64) -> f32 {
        v as f32
    }

    pub fn box_muller_16(data: &mut [f32; 16]) {
        let two_pi = c(2.0 * std::f64::consts::PI);
        for j in 0..8 {
            let u1 = 1.0 - data[j];
            let u2 = data[j + 8];
            let radius = (-2.0 * log(u1)).sqrt();
            let theta = two_pi * u2;
            let (sin, cos) = sincos(theta);
            data[j] = radius * cos;
            data[j + 8] = radius * sin;
        }
    }

    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    /// Natural logarithm: exponent, mantissa folded into [sqrt(1/2), sqrt(2)), and a
    /// degree-8 polynomial.
    fn log(x: f32) -> f32 {
        const P: [f32; 9] = [
            c(7.0376836292E-2),
            c(-1.1514610310E-1),
            c(1.1676998740E-1),
            c(-1.2420140846E-1),
            c(1.4249322787E-1),
            c(-1.6668057665E-1),
            c(2.0000714765E-1),
            c(-2.4999993993E-1),
            c(3.3333331174E-1),
        ];
        const Q1: f32 = c(-2.12194440e-4);
        const Q2: f32 = c(0.693359375);
        const SQRT_HALF: f32 = c(std::f64::consts::FRAC_1_SQRT_2);
        if x <= 0.0 {
            return f32::NAN;
        }
        let bits = x.max(f32::MIN_POSITIVE).to_bits();
        let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
        // The mantissa in [0.5, 1).
        let mut m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
        let below = m < SQRT_HALF;
        let tmp = if below { m } else { 0.0 };
        m -= 1.0;
        if below {
            e -= 1.0;
        }
        m += tmp;
        let z = m * m;
        let mut y = P[0];
        for p in &P[1..] {
            y = fma(y, m, *p);
        }
        // Fused: (y * m) * z + e * Q1, not y * m * z + (e * Q1).
        y = fma(y * m, z, e * Q1);
        y = fma(z, -0.5, y);
        fma(e, Q2, m + y)
    }

    /// Sine and cosine: reduction by multiples of pi/4 (pi/4 in three parts) and the two
    /// Cephes polynomials, chosen and signed by the octant.
    fn sincos(x: f32) -> (f32, f32) {
        const FOUR_OVER_PI: f32 = c(1.27323954473516);
        const DP: [f32; 3] = [
            c(-0.78515625),
            c(-2.4187564849853515625e-4),
            c(-3.77489497744594108e-8),
        ];
        const SIN: [f32; 3] = [c(-1.9515295891E-4), c(8.3321608736E-3), c(-1.6666654611E-1)];
        const COS: [f32; 3] = [
            c(2.443315711809948E-005),
            c(-1.388731625493765E-003),
            c(4.166664568298827E-002),
        ];
        let sign_sin = x.is_sign_negative();
        let mut x = x.abs();
        let j = ((x * FOUR_OVER_PI) as i32 + 1) & !1;
        let y = j as f32;
        for dp in DP {
            x = fma(y, dp, x);
        }
        let z = x * x;
        let mut cos = fma(fma(COS[0], z, COS[1]), z, COS[2]);
        // Fused: (cos * z) * z - z * 0.5, with z * 0.5 rounded on its own.
        cos = fma(cos * z, z, -(z * 0.5));
        cos += 1.0;
        let sin = fma(fma(SIN[0], z, SIN[1]), z, SIN[2]);
        let sin = fma(sin * z, x, x);
        let (sin, cos) = if j & 2 == 0 { (sin, cos) } else { (cos, sin) };
        let sin_negative = sign_sin ^ (j & 4 != 0);
        let cos_negative = (!(j - 2)) & 4 != 0;
        (
            if sin_negative { -sin } else { sin },
            if cos_negative { -cos } else { cos },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mersenne_twister_matches_the_reference_sequence() {
        // The 10000th output of MT19937 seeded with 5489 is 4123659995 (C++ [rand.predef]).
        let mut mt = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10000 {
            last = mt.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }
}
