//! mesalab-kernels: dense f32 kernels on flat row-major buffers.
//!
//! - [`matmul`]: `C (+)= op(A) · op(B)` on one thread, through the `gemm` crate (the sgemm
//!   burn-flex uses, with runtime AVX2/FMA/AVX-512 dispatch). Every shape and buffer length is
//!   checked before the one `unsafe` call, so a wrong size panics instead of reading out of bounds.
//! - [`exp`], [`tanh_in_place`]: branch-free `exp` / `tanh` that the compiler vectorises (the
//!   standard library's `f32::exp` is a scalar libm call, which dominated a small MLP's forward).
//! - [`axpy`]: `y += a·x`, the inner loop of a sparse-times-dense product.
//!
//! `tanh_in_place` and `axpy` run an AVX2+FMA build of their loop when the CPU has them: the
//! crate's other two `unsafe` calls, each after the feature check.
//!
//! Invariants: matrices are row-major; `Mat::t(buf)` means the stored buffer is the transpose of
//! the logical operand. Results are deterministic for a given machine (single thread, fixed
//! blocking), which keeps training runs reproducible.

/// One operand of [`matmul`]: a row-major buffer, read as stored or transposed.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    transposed: bool,
}

impl<'a> Mat<'a> {
    /// The logical operand is the buffer as stored.
    pub fn n(data: &'a [f32]) -> Self {
        Self { data, transposed: false }
    }
    /// The logical operand is the transpose of the stored buffer.
    pub fn t(data: &'a [f32]) -> Self {
        Self { data, transposed: true }
    }

    /// (row stride, column stride) of the logical `[rows, cols]` operand.
    fn strides(&self, rows: usize, cols: usize) -> (isize, isize) {
        if self.transposed {
            // Stored `[cols, rows]`: logical (i, j) lives at j * rows + i.
            (1, rows as isize)
        } else {
            (cols as isize, 1)
        }
    }
}

/// `c = a · b` (or `c += a · b` when `accumulate`), with `a` logically `[m, k]`, `b` `[k, n]` and
/// `c` row-major `[m, n]`. Single-threaded.
///
/// # Panics
/// When a buffer's length is not the product of its logical dimensions.
pub fn matmul(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>, c: &mut [f32], accumulate: bool) {
    assert_eq!(a.data.len(), m * k, "matmul: lhs must hold m*k = {m}*{k} values");
    assert_eq!(b.data.len(), k * n, "matmul: rhs must hold k*n = {k}*{n} values");
    assert_eq!(c.len(), m * n, "matmul: dst must hold m*n = {m}*{n} values");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let (a_rs, a_cs) = a.strides(m, k);
    let (b_rs, b_cs) = b.strides(k, n);
    // SAFETY: every element the kernel touches is in bounds: `a` holds m*k values laid out with
    // strides (a_rs, a_cs) that address exactly that `[m, k]` block (same for `b`, `[k, n]`),
    // `c` holds m*n values with strides (n, 1), and `c` is a unique borrow that cannot alias the
    // shared `a` and `b`. `gemm` reads `c` only when `read_dst` is true.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `e^x` for f32, relative error ≤ 3e-7 on `[-87, 88]`; `0` below −87.3 (and at −∞), `+∞` from
/// 88.73 on (and at +∞), NaN for NaN. Branch-free so loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to the nearest integer, held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 in two parts (Cody–Waite): `n · LN2_HI` is exact for |n| ≤ 512, so the reduced
    // argument keeps full precision even where |x| is large.
    const LN2_HI: f32 = 0.693_359_4; // = 0.693359375 exactly (9 significant bits)
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.5, 88.8);
    let r = xc * std::f32::consts::LOG2_E + ROUND;
    let n_f = r - ROUND; // round(x / ln 2), in [-126, 128]
    let n = r.to_bits() as i32 - ROUND.to_bits() as i32;
    let f = (xc - n_f * LN2_HI) - n_f * LN2_LO; // |f| ≤ ln2 / 2 (+ rounding)
    // e^f by its Taylor series to degree 7 (remainder < 5e-9 on |f| ≤ 0.347), Horner form.
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    // 2^n split in two factors so n = 128 gives +∞ and n = -126 stays normal.
    let half = n >> 1;
    let two_a = f32::from_bits(((half + 127) as u32) << 23);
    let two_b = f32::from_bits((((n - half) + 127) as u32) << 23);
    let y = p * two_a * two_b;
    // Below e^-87.3 (near the smallest normal f32) flush to 0 rather than build a subnormal.
    let y = if x < -87.3 { 0.0 } else { y };
    if x.is_nan() { x } else { y }
}

/// `y += a · x` (the inner loop of a sparse-times-dense product). Uses AVX2+FMA when the CPU has
/// them (detected at run time).
///
/// # Panics
/// When the slices' lengths differ.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: x and y must have one length");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        #[allow(unsafe_code)]
        unsafe {
            axpy_avx2(a, x, y)
        };
        return;
    }
    axpy_portable(a, x, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
    axpy_portable(a, x, y)
}

#[inline(always)]
fn axpy_portable(a: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

/// `tanh` in place, as `1 − 2 / (e^{2x} + 1)` with [`exp`]; absolute error ≤ 3e-7 (tested),
/// saturating to ±1, NaN stays NaN. Uses AVX2+FMA when the CPU has them (detected at run time).
pub fn tanh_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        #[allow(unsafe_code)]
        unsafe {
            tanh_avx2(xs)
        };
        return;
    }
    tanh_portable(xs);
}

/// [`tanh_portable`] compiled for AVX2+FMA (8 lanes instead of SSE2's 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tanh_avx2(xs: &mut [f32]) {
    tanh_portable(xs)
}

#[inline(always)]
fn tanh_portable(xs: &mut [f32]) {
    for x in xs {
        // tanh(±9) rounds to ±1 in f32; the clamp keeps e^{2x} finite.
        let c = x.clamp(-9.0, 9.0);
        let y = 1.0 - 2.0 / (exp(2.0 * c) + 1.0);
        let y = if c.abs() >= 9.0 { c.signum() } else { y };
        *x = if x.is_nan() { *x } else { y };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference `[m, k] · [k, n]` in f64.
    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j])).sum();
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn transpose(rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
        let mut t = vec![0.0; x.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        t
    }

    fn values(len: usize, salt: u32) -> Vec<f32> {
        // A deterministic spread of values in [-1, 1) without a RNG dependency.
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 8) as f32 / 8_388_608.0) - 1.0)
            .collect()
    }

    #[test]
    fn matmul_matches_naive_for_every_transpose_and_accumulate() {
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (17, 64, 33), (128, 2, 64), (4, 64, 4)] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let want = naive(m, n, k, &a, &b);
            let (at, bt) = (transpose(m, k, &a), transpose(k, n, &b));
            for (lhs, rhs) in [
                (Mat::n(&a), Mat::n(&b)),
                (Mat::t(&at), Mat::n(&b)),
                (Mat::n(&a), Mat::t(&bt)),
                (Mat::t(&at), Mat::t(&bt)),
            ] {
                let mut c = vec![f32::NAN; m * n]; // overwritten, never read
                matmul(m, n, k, lhs, rhs, &mut c, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{m}x{n}x{k}: {x} vs {y}");
                }
                let mut acc = vec![1.0f32; m * n];
                matmul(m, n, k, lhs, rhs, &mut acc, true);
                for (x, y) in acc.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() <= 1e-5 * (2.0 + y.abs()), "accumulate {m}x{n}x{k}");
                }
            }
        }
    }

    #[test]
    fn matmul_with_empty_inner_dimension_is_zero_or_unchanged() {
        let mut c = vec![3.0; 6];
        matmul(2, 3, 0, Mat::n(&[]), Mat::n(&[]), &mut c, true);
        assert_eq!(c, vec![3.0; 6]);
        matmul(2, 3, 0, Mat::n(&[]), Mat::n(&[]), &mut c, false);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "lhs must hold")]
    fn matmul_refuses_a_short_buffer() {
        let mut c = vec![0.0; 4];
        matmul(2, 2, 2, Mat::n(&[1.0; 3]), Mat::n(&[1.0; 4]), &mut c, false);
    }

    #[test]
    fn axpy_adds_a_scaled_vector() {
        let x: Vec<f32> = (0..67).map(|i| i as f32).collect();
        let mut y = vec![1.0f32; 67];
        axpy(0.5, &x, &mut y);
        assert!(y.iter().enumerate().all(|(i, v)| (v - (1.0 + 0.5 * i as f32)).abs() < 1e-6));
    }

    #[test]
    fn exp_is_accurate_and_saturates() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst <= 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_accurate_and_saturates() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.006).collect();
        let mut ys = xs.clone();
        tanh_in_place(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            assert!((y - x.tanh()).abs() <= 3e-7, "tanh({x}) = {y}, want {}", x.tanh());
        }
        let mut edge = [f32::INFINITY, f32::NEG_INFINITY, 50.0, -50.0, f32::NAN];
        tanh_in_place(&mut edge);
        assert_eq!(&edge[..4], &[1.0, -1.0, 1.0, -1.0]);
        assert!(edge[4].is_nan());
    }
}
