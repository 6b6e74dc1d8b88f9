//! The statistics behind `verify`: an exact test of whether a failure rate changed.
//!
//! Model: failures before and after a change are Poisson with rates λ₁, λ₂ per unit of
//! exposure (hours of log, or requests when access logs give traffic; failures are rare
//! among requests, so the Poisson approximation to the binomial is close). Conditional on
//! the total n = x₁ + x₂, the after count is Binomial(n, p) with p = e₂λ₂ / (e₁λ₁ + e₂λ₂);
//! under "no change" p₀ = e₂ / (e₁ + e₂). The rate ratio R = λ₂/λ₁ = p/(1−p) · e₁/e₂, so a
//! Clopper–Pearson interval for p gives an exact interval for R, and the two-sided p-value
//! is twice the smaller binomial tail (capped at 1), as R's `poisson.test` for equal
//! exposures. Binomial tails and their inverses use the regularized incomplete beta
//! function (Lentz's continued fraction, Lanczos log-gamma), checked against known values
//! in the tests.
//!
//! This module is pure arithmetic: no I/O, no knowledge of logs.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-14).
#[must_use]
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), a, b > 0, x in [0, 1].
#[must_use]
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction for the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// P(X ≤ k) for X ~ Binomial(n, p).
#[must_use]
pub fn binom_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // P(X ≤ k) = I_{1−p}(n − k, k + 1).
    reg_inc_beta((n - k) as f64, (k + 1) as f64, 1.0 - p)
}

/// P(X ≥ k) for X ~ Binomial(n, p).
#[must_use]
pub fn binom_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    // P(X ≥ k) = I_p(k, n − k + 1).
    reg_inc_beta(k as f64, (n - k + 1) as f64, p)
}

/// x such that I_x(a, b) = q, by bisection (I is monotone in x).
fn beta_inv(q: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if reg_inc_beta(a, b, mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-15 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Exact (Clopper–Pearson) two-sided interval for a binomial proportion x/n at level
/// 1 − alpha.
#[must_use]
pub fn clopper_pearson(x: u64, n: u64, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let x = x.min(n);
    let lo = if x == 0 {
        0.0
    } else {
        beta_inv(alpha / 2.0, x as f64, (n - x + 1) as f64)
    };
    let hi = if x == n {
        1.0
    } else {
        beta_inv(1.0 - alpha / 2.0, (x + 1) as f64, (n - x) as f64)
    };
    (lo, hi)
}

/// Result of comparing two Poisson counts with their exposures.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RateRatio {
    /// (x₂/e₂) / (x₁/e₁); `None` when both counts are 0, infinite when only x₁ is 0.
    pub ratio: Option<f64>,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval (`f64::INFINITY` when unbounded).
    #[serde(serialize_with = "ser_maybe_inf")]
    pub high: f64,
    /// Two-sided exact p-value for "the rate did not change".
    pub p_value: f64,
}

fn ser_maybe_inf<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// Exact conditional test of x₂ events in exposure e₂ (after) against x₁ in e₁ (before).
/// Exposures must be positive; non-positive exposures give an uninformative result.
#[must_use]
pub fn rate_ratio(x1: u64, e1: f64, x2: u64, e2: f64, alpha: f64) -> RateRatio {
    let n = x1 + x2;
    if n == 0 || e1 <= 0.0 || e2 <= 0.0 || !e1.is_finite() || !e2.is_finite() {
        return RateRatio {
            ratio: None,
            low: 0.0,
            high: f64::INFINITY,
            p_value: 1.0,
        };
    }
    let p0 = e2 / (e1 + e2);
    let lower_tail = binom_cdf(x2, n, p0);
    let upper_tail = binom_sf(x2, n, p0);
    let p_value = (2.0 * lower_tail.min(upper_tail)).min(1.0);
    let (pl, pu) = clopper_pearson(x2, n, alpha);
    let to_ratio = |p: f64| {
        if p >= 1.0 {
            f64::INFINITY
        } else {
            p / (1.0 - p) * e1 / e2
        }
    };
    let ratio = if x1 == 0 {
        Some(f64::INFINITY)
    } else {
        Some((x2 as f64 / e2) / (x1 as f64 / e1))
    };
    RateRatio {
        ratio,
        low: to_ratio(pl),
        high: to_ratio(pu),
        p_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn gamma_known_values() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-13));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
        assert!(close(ln_gamma(101.0), 363.739_375_555_563_5, 1e-13));
        assert!(close(ln_gamma(0.1), 2.252_712_651_734_206, 1e-12));
    }

    #[test]
    fn incomplete_beta_known_values() {
        // I_0.5(2,3) = P(Bin(4, .5) >= 2) = 11/16.
        assert!(close(reg_inc_beta(2.0, 3.0, 0.5), 11.0 / 16.0, 1e-13));
        // I_x(1,1) = x.
        assert!(close(reg_inc_beta(1.0, 1.0, 0.3), 0.3, 1e-13));
        // I_x(a,1) = x^a.
        assert!(close(reg_inc_beta(3.5, 1.0, 0.7), 0.7f64.powf(3.5), 1e-12));
        // I_0.4(50, 60) = P(Bin(109, 0.4) >= 50), summed exactly in Python.
        assert!(close(
            reg_inc_beta(50.0, 60.0, 0.4),
            0.124_706_858_343_100_34,
            1e-10
        ));
    }

    #[test]
    fn binomial_tails() {
        // P(Bin(10,.5) <= 2) = 56/1024.
        assert!(close(binom_cdf(2, 10, 0.5), 56.0 / 1024.0, 1e-12));
        assert!(close(binom_sf(8, 10, 0.5), 56.0 / 1024.0, 1e-12));
        assert!(close(binom_cdf(0, 5, 0.2), 0.8f64.powi(5), 1e-12));
        assert_eq!(binom_sf(0, 5, 0.2), 1.0);
        assert_eq!(binom_cdf(5, 5, 0.2), 1.0);
    }

    #[test]
    fn clopper_pearson_known_values() {
        // R: binom.test(5, 10)$conf.int = 0.1870860 0.8129140
        let (lo, hi) = clopper_pearson(5, 10, 0.05);
        assert!(close(lo, 0.187_086_028_447_398_4, 1e-8), "{lo}");
        assert!(close(hi, 0.812_913_971_552_601_6, 1e-8), "{hi}");
        // Zero successes: upper = 1 − (α/2)^(1/n).
        let (lo, hi) = clopper_pearson(0, 10, 0.05);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 1.0 - 0.025f64.powf(0.1), 1e-9));
    }

    #[test]
    fn poisson_rate_ratio_known_values() {
        // R: poisson.test(c(2, 10), c(1, 1)) compares 2 vs 10 with equal exposure:
        // p-value = 0.03857 (twice P(Bin(12,.5) <= 2) = 2·79/4096).
        let r = rate_ratio(10, 1.0, 2, 1.0, 0.05);
        assert!(
            close(r.p_value, 2.0 * 79.0 / 4096.0, 1e-10),
            "{}",
            r.p_value
        );
        assert_eq!(r.ratio, Some(0.2));
        // The interval contains the estimate and is consistent with the CP interval.
        assert!(r.low < 0.2 && 0.2 < r.high && r.high < 1.0);
        let (pl, pu) = clopper_pearson(2, 12, 0.05);
        assert!(close(r.low, pl / (1.0 - pl), 1e-12));
        assert!(close(r.high, pu / (1.0 - pu), 1e-12));
        // Unequal exposure: 24 h before with 100, 24 h after with 100 → ratio 1, p = 1.
        let same = rate_ratio(100, 24.0, 100, 24.0, 0.05);
        assert!(close(same.p_value, 1.0, 1e-12));
        assert!(same.low < 1.0 && same.high > 1.0);
        // Nothing at all.
        assert_eq!(rate_ratio(0, 1.0, 0, 1.0, 0.05).ratio, None);
        // Bad exposure never panics.
        assert_eq!(rate_ratio(3, 0.0, 1, 1.0, 0.05).p_value, 1.0);
    }

    proptest::proptest! {
        #[test]
        fn intervals_are_ordered(x1 in 0u64..5000, x2 in 0u64..5000, e1 in 0.01f64..1e6, e2 in 0.01f64..1e6) {
            let r = rate_ratio(x1, e1, x2, e2, 0.05);
            proptest::prop_assert!(r.low >= 0.0);
            proptest::prop_assert!(r.low <= r.high);
            proptest::prop_assert!((0.0..=1.0).contains(&r.p_value));
            if let Some(est) = r.ratio && est.is_finite() && x1 + x2 > 0 {
                proptest::prop_assert!(r.low <= est * (1.0 + 1e-9) && est <= r.high * (1.0 + 1e-9));
            }
        }
    }
}
