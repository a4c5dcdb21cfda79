"""Finite differences for the tests that check a reference's gradient."""
import numpy as np


def central_diff(f, arrays, k, h=1e-6):
    """Central differences (second order) of the scalar ``f(*arrays)`` with
    respect to ``arrays[k]``, perturbed in place and restored."""
    x = arrays[k]
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(*arrays)
        x[idx] = old - h
        fm = f(*arrays)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


def central_diff4(f, x, h):
    """Fourth-order central differences of the scalar ``f(x)`` at ``x``."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        vals = []
        for k in (2, 1, -1, -2):
            flat[i] = old + k * h
            vals.append(f(x))
        flat[i] = old
        gf[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return g
