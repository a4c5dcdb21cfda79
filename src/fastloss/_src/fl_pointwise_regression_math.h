/* fl_pointwise_regression_math.h -- the scalar math of the regression
 * losses beyond the first catalogue:
 *   - deviances with a log link (input = log of the mean), as scikit-learn's
 *     HalfGammaLoss / HalfTweedieLoss and XGBoost's reg:gamma /
 *     reg:tweedie define them;
 *   - robust losses: pseudo-Huber (XGBoost), fair (LightGBM), Cauchy
 *     (scipy's least_squares, Ceres), Tukey's biweight;
 *   - expectile (asymmetric squared error);
 *   - Keras's mean absolute percentage error and mean squared logarithmic
 *     error, with Keras's epsilon (1e-7) and clamping.
 *
 * Included by fl_pointwise_math.h inside its stamping context (T, T_F32,
 * FN, EXP, LOG, FABS, PW_SIG, PW_UNUSED); no include guard, on purpose.
 * The same rules hold: branches are selects (both sides computed, the
 * unused lane may hold inf or NaN), NaN in x or y reaches v and g, and
 * every function is inlined into the shared loop.
 */

#if T_F32
#define PWR_SQRT sqrtf
#define PWR_COPYSIGN copysignf
#else
#define PWR_SQRT sqrt
#define PWR_COPYSIGN copysign
#endif
/* A scaled residual a beyond PWR_BIG(T) is "huge": 1 + a^2 rounds to a^2 in
 * T there (a > 2^12 for float, 2^27 for double), while a^2 is still finite;
 * the robust losses switch to their asymptotic forms, which are then exact
 * to rounding and keep v, g, h finite (or inf when the value is) up to
 * a = inf. */
#define PWR_BIG ((T)(T_F32 ? 1e15 : 1e150))
/* Keras's backend.epsilon() */
#define PWR_KERAS_EPS ((T)1e-7)

/* log(1 + t) for t >= 0 (or NaN), inf at t = inf, given u = 1 + t and
 * r = 1 / u (which the callers need anyway): log(u) + (t - (u - 1)) / u,
 * the first-order correction of the rounding of u (t - (u - 1) is exact
 * for t < 1, and its square is below the rounding); above 1 the rounding of
 * u moves log(u) by under half an ulp of log 2 and is left alone. */
FL_INLINE T FN(log1p_pos)(T t, T u, T r)
{
    const T c = (t - (u - 1)) * r;
    return LOG(u) + (t < 1 ? c : (T)0);
}

/* ---------------- deviances, log link ---------------- */

/* Gamma NLL at raw prediction x (mean exp(x)): x + y exp(-x), the negative
 * log-likelihood of the exponential (shape-1 Gamma) distribution, and
 * scikit-learn's HalfGammaLoss.  g = 1 - y exp(-x), h = y exp(-x).
 * bad where y <= 0 (not NaN). */
PW_SIG(gamma_nll)
{
    PW_UNUSED;
    const T r = y * EXP(-x);
    *v = x + r;
    *g = 1 - r;
    *h = r;
    *bad = y <= 0;
}

/* Tweedie, power p outside {0, 1, 2}: with pa = 1 - p, pb = 2 - p,
 * e1 = exp(pa x), e2 = exp(pb x):
 *   v = e2 / pb - y e1 / pa,  g = e2 - y e1,  h = pb e2 - pa y e1.
 * Two exponentials, not exp(x) times e1: exp(x) alone may overflow where
 * e2 does not.  bad: y < 0 when i0, y == 0 too when i1 (p >= 2). */
PW_SIG(tweedie)
{
    PW_UNUSED;
    const T e1 = EXP(pa * x), e2 = EXP(pb * x), ye = y * e1;
    *v = e2 * (1 / pb) - ye * (1 / pa); /* reciprocals of loop invariants: hoisted */
    *g = e2 - ye;
    *h = pb * e2 - pa * ye;
    *bad = (i0 & (y < 0)) | (i1 & (y == 0));
}

/* Tweedie p = 0: half the squared error of the mean m = exp(x), as
 * scikit-learn: v = (m - y)^2 / 2, g = m (m - y), h = m (2 m - y). */
PW_SIG(tweedie0)
{
    PW_UNUSED;
    const T m = EXP(x), d = m - y;
    *v = (T)0.5 * d * d;
    *g = m * d;
    *h = m * (m + d);
}

/* Tweedie p = 1: Poisson, v = exp(x) - y x (poisson_nll_loss's kernel, with
 * the Tweedie domain check: bad where y < 0). */
PW_SIG(tweedie1)
{
    PW_UNUSED;
    const T m = EXP(x);
    *v = m - y * x;
    *g = m - y;
    *h = m;
    *bad = y < 0;
}

/* ---------------- robust regression ---------------- */

/* pseudo-Huber, pa = delta > 0 (XGBoost's reg:pseudohubererror), z = x - y,
 * a = |z| / delta, s = sqrt(1 + a^2):
 *   v = delta^2 (s - 1) = delta |z| a / (s + 1)  (no cancellation at small a)
 *   g = z / s,  h = 1 / s^3. */
PW_SIG(pseudo_huber)
{
    PW_UNUSED;
    const T z = x - y, az = FABS(z), a = az * (1 / pa);
    const int big = a > PWR_BIG;
    const T s = big ? a : PWR_SQRT(1 + a * a);
    /* one division for both 1 / s and 1 / (s + 1) */
    const T q = 1 / (s * (s + 1)), is = (s + 1) * q, is1 = s * q;
    *v = big ? pa * az : pa * az * (a * is1);
    *g = big ? PWR_COPYSIGN(pa, z) : z * is;
    *h = big ? (T)0 : is * is * is; /* below 1e-45 (float), 1e-450 (double) when big */
}

/* a - log(1 + a) for a >= 0 (or NaN), inf at a = inf.
 * a < 0.5: with q = a / (2 + a) (so that log(1 + a) = 2 atanh q and
 *   a = 2 q / (1 - q)), a - log(1 + a) = 2 q^2 / (1 - q) - 2 q^3 (1/3 +
 *   q^2/5 + q^4/7 + ...): the leading term dominates, no cancellation;
 *   q^2 < 0.04, 6 terms for float, 12 for double.
 * a >= 0.5: directly (at most 2.4 bits lost at a = 0.5). */
FL_INLINE T FN(a_minus_log1p)(T a)
{
    const T q = a / (2 + a), q2 = q * q; /* 2 q^2 / (1 - q) = q a */
    T p;
#if T_F32
    p = (T)(1.0 / 13);
    p = p * q2 + (T)(1.0 / 11); p = p * q2 + (T)(1.0 / 9);
    p = p * q2 + (T)(1.0 / 7); p = p * q2 + (T)(1.0 / 5);
    p = p * q2 + (T)(1.0 / 3);
#else
    p = (T)(1.0 / 25);
    p = p * q2 + (T)(1.0 / 23); p = p * q2 + (T)(1.0 / 21);
    p = p * q2 + (T)(1.0 / 19); p = p * q2 + (T)(1.0 / 17);
    p = p * q2 + (T)(1.0 / 15); p = p * q2 + (T)(1.0 / 13);
    p = p * q2 + (T)(1.0 / 11); p = p * q2 + (T)(1.0 / 9);
    p = p * q2 + (T)(1.0 / 7); p = p * q2 + (T)(1.0 / 5);
    p = p * q2 + (T)(1.0 / 3);
#endif
    const T small = q * a - 2 * q * q2 * p;
    const T large = a > PWR_BIG ? a : a - LOG(1 + a);
    return a < (T)0.5 ? small : large;
}

/* fair, pa = c > 0 (LightGBM's fair loss), z = x - y, a = |z| / c:
 *   v = c^2 (a - log(1 + a)),  g = z / (1 + a) = c z / (|z| + c),
 *   h = 1 / (1 + a)^2 = c^2 / (|z| + c)^2. */
PW_SIG(fair)
{
    PW_UNUSED;
    const T z = x - y, a = FABS(z) * (1 / pa), r = 1 / (1 + a);
    *v = pa * (pa * FN(a_minus_log1p)(a));
    *g = a > PWR_BIG ? PWR_COPYSIGN(pa, z) : z * r;
    *h = r * r;
}

/* Cauchy (Lorentzian), pa = c > 0, as scipy.optimize.least_squares'
 * loss="cauchy" with f_scale = c (and Ceres' CauchyLoss): z = x - y,
 * a = |z| / c, s = a^2:
 *   v = c^2/2 log(1 + s),  g = z / (1 + s),  h = (1 - s) / (1 + s)^2,
 * one log: log(1 + s) with Goldberg's correction below the huge range,
 * 2 log(a) above it (then g = c / (z / c), h = -1/a^2). */
PW_SIG(cauchy)
{
    PW_UNUSED;
    const T z = x - y, a = FABS(z) * (1 / pa), s = a * a;
    const int big = a > PWR_BIG;
    const T u = 1 + s, w = big ? a : u, q = 1 / w; /* q: 1 / (1 + s), or 1 / a when huge */
    const T l = LOG(w);
    const T lp = l + (s < 1 ? (s - (u - 1)) * q : (T)0); /* log1p(s), as FN(log1p_pos) */
    *v = pa * (pa * (big ? l : (T)0.5 * lp));
    *g = big ? PWR_COPYSIGN(pa * q, z) : z * q;
    *h = big ? -(q * q) : ((1 - s) * q) * q;
}

/* Tukey's biweight, pa = c > 0, z = x - y, s = (z / c)^2, u = 1 - s:
 *   |z| <= c: v = c^2/6 (1 - u^3) = z^2/6 (3 - 3 s + s^2), g = z u^2,
 *             h = u (1 - 5 s);
 *   |z| > c:  v = c^2/6, g = h = 0. */
PW_SIG(tukey_biweight)
{
    PW_UNUSED;
    const T z = x - y, a = z / pa, s = a * a, u = 1 - s;
    const int out = FABS(z) > pa; /* NaN: the inside formulas, NaN */
    *v = out ? pa * pa * (T)(1.0 / 6) : z * z * (T)(1.0 / 6) * (3 - 3 * s + s * s);
    *g = out ? (T)0 : z * u * u;
    *h = out ? (T)0 : u * (1 - 5 * s);
}

/* expectile, pa = tau in (0, 1), r = y - x: w = tau for r >= 0, 1 - tau
 * otherwise; v = w r^2, g = -2 w r, h = 2 w (tau = 0.5: half the squared
 * error). */
PW_SIG(expectile)
{
    PW_UNUSED;
    const T r = y - x, w = r >= 0 ? pa : 1 - pa;
    *v = w * r * r;
    *g = -2 * w * r;
    *h = 2 * w;
}

/* ---------------- Keras's percentage and log losses ---------------- */

/* mean_absolute_percentage_error: 100 |y - x| / max(|y|, eps), eps = 1e-7;
 * g = 100 sign(x - y) / max(|y|, eps) (sign(0) = 0), h = 0. */
PW_SIG(mape)
{
    PW_UNUSED;
    const T ay = FABS(y), m = ay < PWR_KERAS_EPS ? PWR_KERAS_EPS : ay;
    const T k = 100 / m, d = x - y;
    *v = k * FABS(d);
    *g = k * (d > 0 ? (T)1 : (d < 0 ? (T)-1 : d * 0));
    *h = 0;
}

/* mean_squared_logarithmic_error: d = log(1 + max(x, eps)) - log(1 +
 * max(y, eps)), eps = 1e-7; v = d^2; where x >= eps (the clamp passes the
 * gradient, as tf.maximum at a tie): g = 2 d / (1 + x), h = 2 (1 - d) /
 * (1 + x)^2; where x < eps (clamped): g = h = 0. */
PW_SIG(msle)
{
    PW_UNUSED;
    const T xm = x < PWR_KERAS_EPS ? PWR_KERAS_EPS : x;
    const T ym = y < PWR_KERAS_EPS ? PWR_KERAS_EPS : y;
    const T ux = 1 + xm, uy = 1 + ym, r = 1 / ux;
    const T d = FN(log1p_pos)(xm, ux, r) - FN(log1p_pos)(ym, uy, 1 / uy);
    const int clamped = x < PWR_KERAS_EPS; /* NaN is not clamped */
    *v = d * d;
    *g = clamped ? (T)0 : 2 * d * r;
    *h = clamped ? (T)0 : 2 * (1 - d) * r * r;
}

#undef PWR_SQRT
#undef PWR_COPYSIGN
#undef PWR_BIG
#undef PWR_KERAS_EPS
