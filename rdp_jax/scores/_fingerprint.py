"""A score model's fingerprint: a hash of what it is, stable across machines, not of its outputs.

Streams coded against a model (`rcc.progressive_encode`, the codec's files) must reject another
model, but must accept the same model evaluated with other float rounding (another CPU, a GPU,
another batch size, jit or not). Hashing outputs would do the opposite of both, so the fingerprint
hashes the model's definition: its classes, configuration and parameter bytes.
"""

import dataclasses
import functools
import hashlib
import types

import jax
import numpy as np


def fingerprint(model) -> bytes:
    """A 16-byte BLAKE2b digest of `model`'s classes, configuration and parameters.

    What is hashed, recursively: arrays by dtype, shape and little-endian bytes; numbers and
    strings by value (floats exactly, by `float.hex`); sequences and mappings item by item;
    dataclasses (every `equinox.Module`, static fields included) and other objects (flax NNX
    modules) by their class's qualified name and their public attributes; NNX variables by their
    value; functions by qualified name, with their closure variables and defaults (so a closure
    over weights is covered), but not their code: bytecode differs between Python versions, and
    hashing it would orphan every stream at an upgrade; classes by qualified name. Module paths
    are left out, so that a refactoring that moves a class keeps its streams decodable.

    Two models with the same fingerprint are the same definition with the same weights; any
    change of a weight, a layer size, an activation or a parametrization changes it (collisions
    aside, at 2⁻¹²⁸), as long as functions that compute differently have different names: two
    functions of one qualified name, closure and defaults fingerprint alike whatever their
    bodies (a `lambda x, t: x` and a `lambda x, t: -x` do), so a user-written network function
    should be renamed when its body changes. Memory addresses never enter, so the digest is the
    same in every process and on every machine, for arrays that are the same bits there.
    Arrays a source derives and stores are hashed as stored: `scores.gaussian` with a full
    covariance keeps an eigendecomposition, whose last bits depend on the machine's LAPACK, so
    such a source fingerprints alike only where it was built alike (a diagonal one always does).

    **Arguments:** `model`: any score source or callable (`rdp_jax.scores`, an `equinox` or
    flax NNX module, a function).

    **Returns:** 16 bytes.
    """
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, model, set())
    return digest.digest()


def _name(obj) -> bytes:
    """The qualified name of a class or function (of its class for other objects). Not the
    module: moving a class between modules must not orphan the streams coded against it."""
    if not hasattr(obj, "__qualname__"):
        obj = type(obj)
    return obj.__qualname__.encode()


def _feed(digest, obj, active: set) -> None:
    if isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):
        obj = jax.random.key_data(obj)
    if isinstance(obj, jax.Array | np.ndarray | np.generic):
        array = np.asarray(obj)
        array = array.astype(array.dtype.newbyteorder("<"))
        digest.update(b"A" + array.dtype.str.encode() + repr(array.shape).encode())
        digest.update(array.tobytes())
        return
    if obj is None or isinstance(obj, bool | int | str | bytes):
        digest.update(b"S" + type(obj).__name__.encode() + repr(obj).encode())
        return
    if isinstance(obj, float):
        digest.update(b"F" + obj.hex().encode())
        return
    if id(obj) in active:  # a reference cycle: its start is already being hashed
        digest.update(b"R")
        return
    active.add(id(obj))
    try:
        _feed_compound(digest, obj, active)
    finally:
        active.discard(id(obj))


def _feed_compound(digest, obj, active: set) -> None:
    if isinstance(obj, tuple | list):
        digest.update(b"L" + type(obj).__name__.encode() + str(len(obj)).encode())
        for item in obj:
            _feed(digest, item, active)
    elif isinstance(obj, dict):
        digest.update(b"D" + str(len(obj)).encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key, active)
            _feed(digest, obj[key], active)
    elif isinstance(obj, type):
        digest.update(b"C" + _name(obj))
    elif isinstance(obj, types.ModuleType):  # e.g. a closure over `jnp`: its name, not its contents
        digest.update(b"M" + obj.__name__.encode())
    elif isinstance(obj, functools.partial):
        digest.update(b"P")
        for part in (obj.func, obj.args, obj.keywords):
            _feed(digest, part, active)
    elif isinstance(obj, types.FunctionType):
        digest.update(b"f" + _name(obj))
        cells = [cell.cell_contents for cell in obj.__closure__ or ()]
        _feed(digest, (cells, obj.__defaults__, obj.__kwdefaults__), active)
    elif type(obj).__module__.startswith("flax.") and _is_nnx_variable(obj):
        digest.update(b"V" + _name(type(obj)))
        _feed(digest, obj.get_value(), active)
    elif dataclasses.is_dataclass(obj):
        digest.update(b"O" + _name(type(obj)))
        for field in dataclasses.fields(obj):
            _feed(digest, field.name, active)
            _feed(digest, getattr(obj, field.name), active)
    elif hasattr(obj, "__wrapped__"):  # jitted and custom-derivative functions
        digest.update(b"W" + _name(obj))
        _feed(digest, obj.__wrapped__, active)
    elif hasattr(obj, "__dict__"):  # flax NNX modules, plain classes holding weights
        digest.update(b"O" + _name(type(obj)))
        for name in sorted(k for k in vars(obj) if not k.startswith("_")):
            _feed(digest, name, active)
            _feed(digest, vars(obj)[name], active)
    else:  # builtins and other callables: by name
        digest.update(b"N" + _name(obj))


def _is_nnx_variable(obj) -> bool:
    from flax import nnx

    return isinstance(obj, nnx.Variable)
