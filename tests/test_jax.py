"""Tests of ``fastloss.jax``: fastloss losses under jax.jit, jax.grad,
jax.value_and_grad and jax.vmap.

1. Against optax's own losses where optax has them (huber, sigmoid binary
   cross-entropy, softmax cross-entropy with integer labels and with
   probabilities, sigmoid focal, squared error, log-cosh, hinge, Poly-1,
   KL divergence): values and gradients, reduction "none" (the gradient of
   a randomly weighted sum, so the cotangent's product is checked) and
   "mean", float32 and float64, jitted.
2. Every loss (the cases of tests/_loss_cases.py): the JAX form gives the
   bits of the NumPy call, value and gradient, every reduction.
3. Training: a small MLP classifier and a Huber linear model trained 50
   steps with optax.sgd reach the parameters of the same training with
   the optax loss (float64, 1e-9).
4. jax.vmap over a batch axis works (one kernel call per element) and
   equals optax's vmapped loss, gradients too.
5. Errors: other dtypes, devices, differentiating an operand fastloss has
   no gradient for, second derivatives, return_grad=, the import error.
"""
import contextlib
import pathlib
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fastloss as fl

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
optax = pytest.importorskip("optax")
import fastloss.jax as flj  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _loss_cases import CASES, UNSPLIT  # noqa: E402

F32, F64 = np.float32, np.float64
TOL = {F32: dict(rtol=2e-5, atol=2e-6), F64: dict(rtol=1e-12, atol=1e-13)}


def _x64(dtype):
    return jax.enable_x64(dtype is F64)


@contextlib.contextmanager
def _x64_process(dtype):
    """64-bit mode for the process (every thread) while the block runs."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", dtype is F64)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _close(a, b, dtype, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    tol = TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=what)


# ----------------------------------------------------------------- 1. optax

def _logits(rng, shape):
    return rng.standard_normal(shape) * 2


OPTAX = {
    # name: (fastloss.jax call, optax per-element call, data(rng) -> (x, t))
    "huber": (lambda x, t, r: flj.huber_loss(x, t, reduction=r, delta=0.7),
              lambda x, t: optax.losses.huber_loss(x, t, delta=0.7),
              lambda rng: (rng.standard_normal(300) * 2, rng.standard_normal(300))),
    "sigmoid_bce": (lambda x, t, r: flj.binary_cross_entropy_with_logits(x, t, reduction=r),
                    lambda x, t: optax.losses.sigmoid_binary_cross_entropy(x, t),
                    lambda rng: (_logits(rng, (40, 7)), rng.uniform(0, 1, (40, 7)))),
    "softmax_ce_int": (lambda x, t, r: flj.cross_entropy(x, t, reduction=r),
                       lambda x, t: optax.losses.softmax_cross_entropy_with_integer_labels(x, t),
                       lambda rng: (_logits(rng, (50, 6)), rng.integers(0, 6, 50))),
    "softmax_ce_soft": (lambda x, t, r: flj.cross_entropy(x, t, reduction=r),
                        lambda x, t: optax.losses.softmax_cross_entropy(x, t),
                        lambda rng: (_logits(rng, (50, 6)), rng.dirichlet(np.ones(6), 50))),
    "sigmoid_focal": (lambda x, t, r: flj.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction=r),
                      lambda x, t: optax.losses.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0),
                      lambda rng: (_logits(rng, (30, 5)), (rng.uniform(0, 1, (30, 5)) > 0.7) * 1.0)),
    "sigmoid_focal_g1.5": (lambda x, t, r: flj.sigmoid_focal_loss(x, t, alpha=0.4, gamma=1.5, reduction=r),
                           lambda x, t: optax.losses.sigmoid_focal_loss(x, t, alpha=0.4, gamma=1.5),
                           lambda rng: (_logits(rng, (30, 5)), (rng.uniform(0, 1, (30, 5)) > 0.7) * 1.0)),
    "squared_error": (lambda x, t, r: flj.mse_loss(x, t, reduction=r),
                      lambda x, t: optax.losses.squared_error(x, t),
                      lambda rng: (rng.standard_normal((20, 9)), rng.standard_normal((20, 9)))),
    "log_cosh": (lambda x, t, r: flj.log_cosh_loss(x, t, reduction=r),
                 lambda x, t: optax.losses.log_cosh(x, t),
                 lambda rng: (rng.standard_normal(200) * 3, rng.standard_normal(200))),
    "hinge": (lambda x, t, r: flj.hinge_loss(x, t, reduction=r),
              lambda x, t: optax.losses.hinge_loss(x, t),
              lambda rng: (rng.standard_normal(200) * 2, rng.choice([-1.0, 1.0], 200))),
    "poly1": (lambda x, t, r: flj.poly1_cross_entropy(x, t, epsilon=1.5, reduction=r),
              lambda x, t: optax.losses.poly_loss_cross_entropy(x, t, epsilon=1.5),
              lambda rng: (_logits(rng, (50, 6)), np.eye(6)[rng.integers(0, 6, 50)])),
    "kl": (lambda x, t, r: flj.kl_div(x, t, reduction="batchmean" if r == "mean" else r).sum(axis=-1)
           if r == "none" else flj.kl_div(x, t, reduction="batchmean" if r == "mean" else r),
           lambda x, t: optax.losses.kl_divergence(x, t),
           lambda rng: (np.log(rng.dirichlet(np.ones(5), 40)), rng.dirichlet(np.ones(5), 40))),
}


F64_TOO = {"huber", "softmax_ce_int", "sigmoid_focal_g1.5"}


@pytest.mark.parametrize("name, dtype", [(n, F32) for n in sorted(OPTAX) if n != "sigmoid_focal_g1.5"]
                         + [(n, F64) for n in sorted(F64_TOO)],
                         ids=lambda v: getattr(v, "__name__", v))
def test_against_optax(name, dtype):
    ours, theirs, data = OPTAX[name]
    rng = np.random.default_rng(len(name))
    x, t = data(rng)
    with _x64(dtype):
        x = jnp.asarray(x, dtype)
        t = jnp.asarray(t) if np.asarray(t).dtype.kind in "iu" else jnp.asarray(t, dtype)
        w = jnp.asarray(rng.uniform(0.5, 2.0, np.shape(theirs(x, t))), dtype)

        @jax.jit
        def both(x, t, w):
            """ours and optax's: "none" values and the gradient of a random
            weighting of them (the cotangent's product), "mean" value_and_grad"""
            out = []
            for f in (ours, lambda x, t, r: theirs(x, t) if r == "none" else theirs(x, t).mean()):
                out.append((f(x, t, "none"), jax.grad(lambda x: (f(x, t, "none") * w).sum())(x),
                            *jax.value_and_grad(lambda x: f(x, t, "mean"))(x)))
            return out

        (v, g, vm, gm), (v_ref, g_ref, vm_ref, gm_ref) = both(x, t, w)
        _close(v, v_ref, dtype, f"{name} none value")
        _close(g, g_ref, dtype, f"{name} none gradient")
        assert vm.dtype == dtype and vm.shape == ()
        _close(vm, vm_ref, dtype, f"{name} mean value")
        _close(gm, gm_ref, dtype, f"{name} mean gradient")


def test_target_gradients_against_optax():
    """Where fastloss differentiates the target too (squared error; soft
    cross-entropy), jax.grad with respect to it is optax's."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        x, t = jnp.asarray(rng.standard_normal((20, 9))), jnp.asarray(rng.standard_normal((20, 9)))
        g = jax.grad(lambda x, t: flj.mse_loss(x, t), argnums=(0, 1))(x, t)
        r = jax.jit(jax.grad(lambda x, t: optax.losses.squared_error(x, t).mean(), argnums=(0, 1)))(x, t)
        for a, b in zip(g, r):
            _close(a, b, F64, "squared error")
        x, p = jnp.asarray(rng.standard_normal((30, 4))), jnp.asarray(rng.dirichlet(np.ones(4), 30))
        g = jax.grad(lambda x, p: flj.cross_entropy(x, p), argnums=(0, 1))(x, p)
        r = jax.jit(jax.grad(lambda x, p: optax.losses.softmax_cross_entropy(x, p).mean(), argnums=(0, 1)))(x, p)
        for a, b in zip(g, r):
            _close(a, b, F64, "soft cross-entropy")
        # only the target: the kernel is asked for that gradient alone
        gt = jax.grad(lambda p: flj.cross_entropy(x, p))(p)
        _close(gt, r[1], F64, "soft cross-entropy, target alone")


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.__name__)
def test_ctc_against_optax(dtype):
    """optax.ctc_loss (logits (B, T, K) with paddings, per-sequence -log p)
    against fastloss.jax.ctc_loss on the same logits (from_logits=True,
    batch_first=True) and on their log_softmax, time first (the gradient
    chained through jax.nn.log_softmax): values of reduction "none" and
    the gradient of a random weighting of them, and "sum"."""
    rng = np.random.default_rng(13)
    B, T, K, S = 6, 30, 7, 9
    logits = rng.standard_normal((B, T, K)) * 2
    labels = rng.integers(1, K, (B, S))
    tl = rng.integers(1, S + 1, B)
    il = rng.integers(2 * S + 1, T + 1, B)  # every target fits (optax's log(0) is -1e5, fastloss's inf)
    with _x64_process(dtype):  # optax's scan runs the callback on another thread: see the module's docstring
        z, y = jnp.asarray(logits, dtype), jnp.asarray(labels)
        til, ttl = jnp.asarray(il), jnp.asarray(tl)
        lpad = jnp.asarray(np.arange(T)[None, :] >= il[:, None], dtype)
        ypad = jnp.asarray(np.arange(S)[None, :] >= tl[:, None], dtype)
        w = jnp.asarray(rng.uniform(0.5, 2.0, B), dtype)

        def theirs(z, r="none"):
            return optax.losses.ctc_loss(z, lpad, y, ypad, blank_id=0)

        def ours_logits(z, r="none"):
            return flj.ctc_loss(z, y, til, ttl, reduction=r, from_logits=True, batch_first=True)

        def ours_log_softmax(z, r="none"):
            lp = jnp.transpose(jax.nn.log_softmax(z, axis=-1), (1, 0, 2))
            return flj.ctc_loss(lp, y, til, ttl, reduction=r)

        @jax.jit
        def all_of(z):
            """optax's and ours (from logits, through log_softmax): "none" values,
            the gradient of a random weighting of them, "sum" value_and_grad"""
            return [(f(z), jax.grad(lambda z: (f(z) * w).sum())(z),
                     *jax.value_and_grad(lambda z: f(z, "sum").sum())(z))
                    for f in (theirs, ours_logits, ours_log_softmax)]

        (v_ref, g_ref, vs_ref, gs_ref), *ours = all_of(z)
        for name, (v, g, vs, gs) in zip(("from_logits", "log_softmax"), ours):
            assert v.dtype == dtype
            _close(v, v_ref, dtype, f"ctc {name} none value")
            _close(g, g_ref, dtype, f"ctc {name} none gradient")
            _close(vs, vs_ref, dtype, f"ctc {name} sum value")
            _close(gs, gs_ref, dtype, f"ctc {name} sum gradient")


# ----------------------------------------------------------------- 2. every loss: fastloss's bits

def _grad_positions(case, args, kw):
    import inspect

    names = list(inspect.signature(case.fn).parameters)[:len(args)]
    return [i for i, n in enumerate(names) if n in getattr(case.fn, "_grad_args", ("input",))]


@pytest.mark.parametrize("case", CASES + UNSPLIT, ids=repr)
def test_same_bits_as_the_numpy_call(case):
    rng = np.random.default_rng(zlib.crc32(case.cid.encode()))
    args, kw = case.make(rng, F32)
    f = getattr(flj, case.fn.__name__)
    pos = _grad_positions(case, args, kw)
    jargs = [jnp.asarray(a) for a in args]
    jkw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    for reduction in case.reductions[:1] + tuple(r for r in ("none",) if r in case.reductions):  # "sum" ~ "mean"
        res = case.fn(*args, **kw, reduction=reduction, return_grad=True)
        value, grads = res[0], res[1:]
        if reduction == "none":
            w = rng.uniform(0.5, 2.0, np.shape(value)).astype(F32)

            def loss(*ops):
                return (f(*ops, **jkw, reduction=reduction) * w).sum()
        else:
            w = None

            def loss(*ops):
                return f(*ops, **jkw, reduction=reduction)

        # the value alone is the kernel's value-only loop (its rounding may differ from the
        # value computed beside the gradient); value_and_grad is the fused one
        v = f(*jargs, **jkw, reduction=reduction)
        np.testing.assert_array_equal(np.asarray(v), np.asarray(case.fn(*args, **kw, reduction=reduction), F32),
                                      err_msg=f"{case.cid} {reduction}")
        if reduction != "none":
            v, _ = jax.value_and_grad(loss, argnums=tuple(pos))(*jargs)
            np.testing.assert_array_equal(np.asarray(v), np.asarray(value, F32), err_msg=f"{case.cid} {reduction}")
        got = (jax.jit if reduction == "none" else lambda f: f)(jax.grad(loss, argnums=tuple(pos)))(*jargs)
        for k, (g, e) in enumerate(zip(got, grads)):
            what = f"{case.cid} {reduction} gradient {k}"
            if w is None:
                np.testing.assert_array_equal(np.asarray(g), e, err_msg=what)
                continue
            ww = w
            if w.ndim < e.ndim:  # one value per row (box, image), the gradient over its classes too
                ax = getattr(case.fn, "_class_axis", 1)
                ax = ax(kw) if callable(ax) else ax  # CTC: time and class, around the batch axis
                ww = w.reshape(w.shape + (1,) * (e.ndim - w.ndim)) if ax is None else np.expand_dims(w, ax)
            if np.shape(args[pos[k]]) == args[0].shape:
                np.testing.assert_array_equal(np.asarray(g), e * ww, err_msg=what)
            else:  # an operand broadcast against the input: fastloss's per-element gradient,
                #      weighted, then summed back (in another order: to rounding)
                a = list(args)
                a[pos[k]] = np.broadcast_to(np.expand_dims(args[pos[k]], -1), args[0].shape)
                ge = case.fn(*a, **kw, reduction=reduction, return_grad=True)[1 + k] * ww
                ref = ge.sum(axis=-1, dtype=np.float64)
                np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-5, atol=1e-6 * np.abs(ge).sum(-1).max(),
                                           err_msg=what)


def test_every_loss_has_a_jax_form():
    import inspect

    fns = set(flj.__all__)
    loss_fns = {n for n in fl.__all__ if callable(getattr(fl, n)) and n[0].islower()
                and "return_grad" in inspect.signature(getattr(fl, n)).parameters}
    assert fns == loss_fns
    assert {c.fn.__name__ for c in CASES + UNSPLIT} == fns
    for n in fns:
        params = inspect.signature(getattr(flj, n)).parameters
        assert "return_grad" not in params and "out" not in params
        assert list(params) == [p for p in inspect.signature(getattr(fl, n)).parameters
                                if p not in ("return_grad", "out")]


# ----------------------------------------------------------------- 3. training

def _train(loss, params, steps=50, lr=0.1):
    opt = optax.sgd(lr)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    values = []
    for _ in range(steps):
        params, state, value = step(params, state)
        values.append(float(value))
    return params, values


def test_training_reaches_the_parameters_of_the_optax_loss():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        X = jnp.asarray(rng.standard_normal((256, 8)))
        y = jnp.asarray((np.asarray(X[:, 0]) + np.asarray(X[:, 1]) ** 2 > 1).astype(int)
                        + (np.asarray(X[:, 2]) > 0.5))
        params = {"W1": jnp.asarray(rng.standard_normal((8, 16)) * 0.3), "b1": jnp.zeros(16),
                  "W2": jnp.asarray(rng.standard_normal((16, 3)) * 0.3), "b2": jnp.zeros(3)}

        def logits(p):
            return jnp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

        ours, v1 = _train(lambda p: flj.cross_entropy(logits(p), y, label_smoothing=0.1), params, lr=0.5)
        ref, v2 = _train(lambda p: optax.losses.softmax_cross_entropy(
            logits(p), optax.smooth_labels(jax.nn.one_hot(y, 3), 0.1)).mean(), params, lr=0.5)
        assert v1[-1] < 0.8 * v1[0]  # it learned
        for k in params:
            np.testing.assert_allclose(ours[k], ref[k], rtol=1e-9, atol=1e-9, err_msg=k)

        # regression: a Huber linear model on heavy-tailed noise
        yr = X @ jnp.arange(1.0, 9.0) + jnp.asarray(rng.standard_t(2, 256))
        p0 = {"w": jnp.zeros(8), "b": jnp.zeros(())}
        ours, _ = _train(lambda p: flj.huber_loss(X @ p["w"] + p["b"], yr, delta=1.0), p0)
        ref, _ = _train(lambda p: optax.losses.huber_loss(X @ p["w"] + p["b"], yr, delta=1.0).mean(), p0)
        for k in p0:
            np.testing.assert_allclose(ours[k], ref[k], rtol=1e-9, atol=1e-9, err_msg=k)


# ----------------------------------------------------------------- 4. vmap

def test_vmap_over_a_batch_axis():
    rng = np.random.default_rng(2)
    X = jnp.asarray(rng.standard_normal((6, 40, 5)), F32)
    Y = jnp.asarray(rng.integers(0, 5, (6, 40)))
    T = jnp.asarray(rng.standard_normal((6, 40, 5)), F32)
    # one loss per batch element, each the mean over its own rows
    v = jax.vmap(flj.cross_entropy)(X, Y)
    r = jax.jit(jax.vmap(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()))(X, Y)
    _close(v, r, F32, "vmapped cross-entropy")
    g = jax.jit(jax.vmap(jax.grad(flj.cross_entropy)))(X, Y)
    gr = jax.jit(jax.vmap(jax.grad(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y)
                                   .mean())))(X, Y)
    _close(g, gr, F32, "vmapped gradient")
    # in_axes: a target shared by the batch; per-element values
    v = jax.vmap(lambda x: flj.huber_loss(x, T[0], reduction="none"))(T)
    _close(v, optax.losses.huber_loss(T, T[0][None]), F32, "vmapped none")
    # each element is one fastloss call on that element: the same bits
    v = np.asarray(jax.vmap(flj.mse_loss)(X, T))
    for i in range(X.shape[0]):
        assert v[i] == np.float32(fl.mse_loss(np.asarray(X[i]), np.asarray(T[i])))


# ----------------------------------------------------------------- 5. errors

def test_check_looks_at_the_data_not_at_the_shape_call():
    """check=True: the call on zeros that finds the value's shape warns of
    nothing; the kernel's call on data the check flags warns."""
    import warnings

    x, t = np.linspace(1, 2, 50), np.linspace(1, 3, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flj.mean_absolute_percentage_error(jnp.asarray(x), jnp.asarray(t), reduction="none", check=True)
    t[:10] = 0.0
    with pytest.warns(fl.LossWarning, match="mean_absolute_percentage_error: target has"):
        jax.block_until_ready(flj.mean_absolute_percentage_error(jnp.asarray(x), jnp.asarray(t), check=True))


def test_a_float32_operand_traced_as_float64_is_refused():
    """The callback's operands converted to float32 by JAX (64-bit mode off
    in the callback's thread) are refused, not computed in float32."""
    from fastloss.jax import _host

    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: the callback received input as float32, "
                                        r"traced as float64: JAX's 64-bit mode is off .*jax_enable_x64"):
        _host(fl.mse_loss, ("input", "target"), {}, (), np.float64, (), x, x)


def test_errors():
    x = jnp.ones(4, F32)
    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: input must be float32 or float64, got bfloat16; "
                                        r"use a JAX-native loss \(optax\.losses\)"):
        flj.mse_loss(x.astype(jnp.bfloat16), x)
    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: input must be float32 or float64, got int32"):
        flj.mse_loss(jnp.arange(4, dtype=jnp.int32), x)   # int32 whether or not 64-bit mode is on
    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: return_grad= is not an argument of the JAX "
                                        r"form \(use jax\.grad\)"):
        flj.mse_loss(x, x, return_grad=True)
    with pytest.raises(TypeError, match=r"fastloss\.jax\.hinge_loss: cannot differentiate with respect to target; "
                                        r"fastloss gives gradients with respect to input only"):
        jax.grad(lambda t: flj.hinge_loss(x, t))(jnp.sign(x))
    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: cannot differentiate with respect to weight"):
        jax.grad(lambda w: flj.mse_loss(x, x * 0, weight=w))(x)
    with pytest.raises(TypeError, match=r"fastloss\.jax: second derivatives are not supported"):
        jax.hessian(lambda x: flj.mse_loss(x, jnp.zeros(4)))(x)
    with pytest.raises(ValueError, match=r"fastloss\.jax\.huber_loss: huber_loss: delta must be > 0"):
        flj.huber_loss(x, x, delta=-1.0)
    # an error in the data is raised inside the callback: JAX wraps it, fastloss's message last
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"ValueError: cross_entropy: Target 7 is out of bounds "
                                                         r"\(target\[1\] = 7, n_classes = 3\)"):
        flj.cross_entropy(jnp.ones((2, 3)), jnp.array([0, 7])).block_until_ready()


def test_other_devices_are_refused():
    class Dev:
        platform = "gpu"

    class OnGPU:
        dtype = np.dtype(np.float32)
        shape = (3,)
        aval = None

        def devices(self):
            return {Dev()}

    with pytest.raises(TypeError, match=r"fastloss\.jax\.mse_loss: input is on gpu; fastloss runs on the CPU: move "
                                        r"it with jax\.device_put\(\.\.\., jax\.devices\('cpu'\)\[0\]\), or use a "
                                        r"JAX-native loss \(optax\.losses\) there"):
        flj.mse_loss(OnGPU(), np.zeros(3, np.float32))


def test_import_error_names_the_extra():
    p = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.modules["jax"] = None
        try:
            import fastloss.jax
        except ImportError as e:
            print(e)
    """)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert 'pip install "fastloss[jax]"' in p.stdout, p.stdout
