"""Counter-based pseudo-random numbers as polars expressions (SplitMix64, stable across versions).

Every random draw in the sample data is a pure function of ``(seed, account, user, stream, k)``:
the key is packed into one unsigned 64-bit integer and scrambled with the SplitMix64 finaliser,
written with wrapping ``UInt64`` arithmetic. Unlike :meth:`polars.Expr.hash`, whose output may
change between polars releases, this gives the same numbers on every machine and version, and
it does not depend on row order, so frames can be built in any order and stay reproducible.
"""

from __future__ import annotations

import polars as pl

__all__ = ["BITS", "draw", "key", "mix", "scalar_mix", "slice_uniform",
           "uniform"]


_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1

BITS = 21
"""Bits per uniform slice: one 64-bit hash yields three 21-bit uniforms."""

_SLICE = 1 << BITS


def scalar_mix(x: int) -> int:
    """SplitMix64 finaliser on a Python int (the reference for :func:`mix`).

    Parameters
    ----------
    x
        Any integer; only its low 64 bits are used.

    Returns
    -------
    int
        The scrambled 64-bit value.

    Examples
    --------
    >>> scalar_mix(0)
    16294208416658607535
    """
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _C1) & _MASK
    z = ((z ^ (z >> 27)) * _C2) & _MASK
    return z ^ (z >> 31)


def mix(x: pl.Expr) -> pl.Expr:
    """SplitMix64 finaliser on a ``UInt64`` expression (wrapping arithmetic).

    Parameters
    ----------
    x
        A ``UInt64`` expression.

    Returns
    -------
    polars.Expr
        The scrambled ``UInt64`` values; equal to :func:`scalar_mix` element by element.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.LazyFrame({"x": pl.Series([0], dtype=pl.UInt64)})
    >>> df.select(mix(pl.col("x"))).collect().item()
    16294208416658607535
    """
    z = x + pl.lit(_GOLDEN, pl.UInt64)
    z = (z ^ (z // (1 << 30))) * pl.lit(_C1, pl.UInt64)
    z = (z ^ (z // (1 << 27))) * pl.lit(_C2, pl.UInt64)
    return z ^ (z // (1 << 31))


def key(seed: int, account: pl.Expr, user: pl.Expr, stream: int | pl.Expr, k: pl.Expr) -> pl.Expr:
    """Hash of one draw's coordinates, as ``UInt64``.

    The coordinates are packed as ``account`` (up to 20 bits), ``user`` + 2 (9 bits: users -2
    to 509, where negative numbers stand for "no user" and the decision maker), ``stream``
    (6 bits) and ``k`` (up to 29 bits), then offset by the mixed seed and scrambled. Distinct
    coordinates give distinct keys, so draws never repeat.

    Parameters
    ----------
    seed
        The generator seed.
    account, user, stream, k
        Integer expressions (or a constant stream) naming the draw.

    Returns
    -------
    polars.Expr
        A ``UInt64`` hash.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"a": [0, 0], "u": [0, 1], "k": [0, 0]})
    >>> out = lf.select(key(7, pl.col("a"), pl.col("u"), 3, pl.col("k"))).collect()
    >>> out.to_series().n_unique()
    2
    """
    stream_e = pl.lit(stream, pl.UInt64) if isinstance(stream, int) else stream.cast(pl.UInt64)
    packed = (
        account.cast(pl.UInt64) * pl.lit(1 << 44, pl.UInt64)
        + (user + 2).cast(pl.UInt64) * pl.lit(1 << 35, pl.UInt64)
        + stream_e * pl.lit(1 << 29, pl.UInt64)
        + k.cast(pl.UInt64)
    )
    return mix(packed + pl.lit(scalar_mix(seed), pl.UInt64))


def slice_uniform(h: pl.Expr, i: int) -> pl.Expr:
    """The ``i``-th (0, 1 or 2) 21-bit slice of a hash as a ``Float64`` uniform in [0, 1).

    Parameters
    ----------
    h
        A ``UInt64`` hash (from :func:`key` or :func:`mix`).
    i
        Which slice: 0 (high bits), 1 (middle) or 2 (low bits).

    Returns
    -------
    polars.Expr
        Floats in ``[0, 1)``.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"h": pl.Series([2**64 - 1], dtype=pl.UInt64)})
    >>> lf.select(slice_uniform(pl.col("h"), 0)).collect().item() < 1
    True
    """
    if i not in (0, 1, 2):
        raise ValueError(f"slice must be 0, 1 or 2, got {i}")
    shifted = h // (1 << (BITS * (2 - i) + 1)) if i < 2 else h
    return (shifted % _SLICE).cast(pl.Float64) / float(_SLICE)


def uniform(h: pl.Expr, i: int) -> pl.Expr:
    """The ``i``-th uniform in [0, 1) drawn from one row hash: three per round of mixing.

    ``uniform(h, 0..2)`` slice ``h`` itself; ``uniform(h, 3..5)`` slice ``mix(h)``, and so on.

    Parameters
    ----------
    h
        A ``UInt64`` hash.
    i
        Index of the uniform (0 or more).

    Returns
    -------
    polars.Expr
        Floats in ``[0, 1)``.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"h": pl.Series([12345], dtype=pl.UInt64)})
    >>> row = lf.select([uniform(pl.col("h"), j).alias(str(j)) for j in range(4)]).collect()
    >>> all(0 <= v < 1 for v in row.row(0))
    True
    """
    rounds, part = divmod(i, 3)
    for _ in range(rounds):
        h = mix(h)
    return slice_uniform(h, part)


def draw(h: pl.Expr, i: int, lo: float | pl.Expr, hi: float | pl.Expr) -> pl.Expr:
    """A uniform float in ``[lo, hi)`` from the ``i``-th uniform of ``h``.

    Parameters
    ----------
    h
        A ``UInt64`` hash.
    i
        Index of the uniform (see :func:`uniform`).
    lo, hi
        Bounds (numbers or expressions).

    Returns
    -------
    polars.Expr
        ``lo + u * (hi - lo)``.

    Examples
    --------
    >>> import polars as pl
    >>> lf = pl.LazyFrame({"h": pl.Series([99], dtype=pl.UInt64)})
    >>> 5 <= lf.select(draw(pl.col("h"), 0, 5.0, 10.0)).collect().item() < 10
    True
    """
    lo_e = lo if isinstance(lo, pl.Expr) else pl.lit(float(lo))
    hi_e = hi if isinstance(hi, pl.Expr) else pl.lit(float(hi))
    return lo_e + uniform(h, i) * (hi_e - lo_e)
