"""CrossFuse's fixed skip-fusion weights (``Weight`` in the official decoder; paper Eq. 4-5).

The official operators are 3x3 convolutions whose weights are all 1/9 over **every** input
channel, zero padding 1 and no bias: ``B(x) = (1/9) * sum over channels and the 3x3 window``,
the same value for every output channel. They are constants, not parameters; the weights are
``stop_gradient``-ed (``.detach()`` in the official code) and computed in float32.
"""

import jax
import jax.numpy as jnp

EPSILON = 1e-6


def box_all_channels(x_NxHxWxC):
    """(1/9) * the 3x3 zero-padded box sum of the channel sum, broadcast to C channels."""
    s = jnp.sum(x_NxHxWxC.astype(jnp.float32), axis=-1, keepdims=True)
    h, w = s.shape[1:3]
    sp = jnp.pad(s, ((0, 0), (1, 1), (1, 1), (0, 0)))
    box = sum(sp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0
    return jnp.broadcast_to(box, x_NxHxWxC.shape)


def _ratio(g_a, g_b):
    w_a, w_b = g_a / (g_a + g_b + EPSILON), g_b / (g_a + g_b + EPSILON)
    return jax.lax.stop_gradient(w_a), jax.lax.stop_gradient(w_b)


def deep_weights(ir_de, vi_de):
    """``Weight.for_de``: w = B(x) / (B(ir) + B(vi) + 1e-6). Signed features: unbounded, signed."""
    return _ratio(box_all_channels(ir_de), box_all_channels(vi_de))


def shallow_weights(ir_sh, vi_sh):
    """``Weight.for_sh``: e = |x - B(x)| per channel, w = e / (e_ir + e_vi + 1e-6), in [0, 1]."""
    e_ir = jnp.abs(ir_sh.astype(jnp.float32) - box_all_channels(ir_sh))
    e_vi = jnp.abs(vi_sh.astype(jnp.float32) - box_all_channels(vi_sh))
    return _ratio(e_ir, e_vi)
