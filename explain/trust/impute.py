"""ROAD's linear imputation system: every removed pixel equals the weighted mean of its eight neighbours.

The system is a graph Laplacian on the removed pixels with the kept pixels as fixed boundary values, so it is
symmetric positive definite. `solve_exact` factorises it (sparse LU, as ROAD's authors do); `solve_fast`
solves the same system by conjugate gradients preconditioned with one multigrid V-cycle on the pixel grid
(a few dozen whole-image array operations per iteration instead of a factorisation whose fill-in grows
with the holes), until the multigrid's own estimate of the remaining error is below `tol`.
Both take image (C, H, W) float64 and removed (H, W) bool and return the removed pixels' values (C, n),
in the order of np.flatnonzero(removed).
"""

from __future__ import annotations

import cv2
import numpy as np

# the weights of the eight neighbours (edges count twice as much as corners), as (dy, dx, weight)
NEIGHBOURS = ((1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12), (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6))
_KERNEL64 = np.array([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])
_KERNEL32 = _KERNEL64.astype(np.float32)
_SWEEPS = 2  # smoothing sweeps before and after each coarse correction
_COARSEST = 6  # stop coarsening below this many pixels a side (or when a level has no fixed pixel left)
_COARSE_SWEEPS = 20  # on a coarsest grid too large to invert
_FLOAT32_TOL = 3e-3  # the first, float32 solve stops here (about its own rounding limit on large holes)
DIRECT_UNKNOWNS = 1500  # at most this many unknowns: factorise (the whole system, or the coarsest grid)


def _operator(removed: np.ndarray):
    """The system's matrix on the removed pixels (in np.flatnonzero order): the neighbour weights inside the
    image on the diagonal, minus the weight of each removed neighbour. Symmetric positive definite (scipy csc_matrix)."""
    # scipy is imported where it is used: 0.4 s off every page that imports explain.trust
    from scipy.sparse import csc_matrix

    h, w = removed.shape
    idx = np.flatnonzero(removed.ravel())
    var = np.full(h * w, -1, dtype=np.int64)
    var[idx] = np.arange(idx.size)
    ys, xs = np.divmod(idx, w)
    rows, cols, vals = [np.arange(idx.size)], [np.arange(idx.size)], []
    diag = np.ones(idx.size)
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        diag[~inside] -= weight
        eq = np.flatnonzero(inside)
        nb = var[ny[eq] * w + nx[eq]]
        rows.append(eq[nb >= 0])
        cols.append(nb[nb >= 0])
        vals.append(np.full(int((nb >= 0).sum()), -weight))
    vals.insert(0, diag)
    return csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(idx.size, idx.size))


def _kept_share(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Each equation's right-hand side: the weighted sum of its kept neighbours. (H, W, C) float64."""
    known = np.where(removed, 0.0, image).transpose(1, 2, 0)
    return cv2.filter2D(np.ascontiguousarray(known), -1, _KERNEL64, borderType=cv2.BORDER_CONSTANT).reshape(known.shape)


def solve_exact(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The removed pixels' values by a sparse LU factorisation of the system."""
    from scipy.sparse.linalg import spsolve

    rhs = _kept_share(image, removed)[removed]
    return np.asarray(spsolve(_operator(removed), rhs, permc_spec="COLAMD")).reshape(rhs.shape).T  # COLAMD: half the default's time


def _neighbour_sum(e: np.ndarray) -> np.ndarray:
    """The weighted sum of each pixel's eight neighbours, zero beyond the image. e: (H, W, C) float32."""
    return cv2.filter2D(e, -1, _KERNEL32, borderType=cv2.BORDER_CONSTANT).reshape(e.shape)


class _Level:
    """One grid of the multigrid hierarchy: which pixels are unknown and the diagonal of the operator there."""

    def __init__(self, unknown: np.ndarray, channels: int):
        h, w = unknown.shape
        self.shape = (h, w)
        self.mask = unknown
        # every field is stored for all channels: numpy broadcasts a trailing axis of one slowly
        self.unknown = np.repeat(unknown.astype(np.float32)[..., None], channels, 2)
        # the diagonal: the weights of the neighbours inside the image (the system's own boundary rule)
        diag = cv2.filter2D(np.ones((h, w), np.float32), -1, _KERNEL32, borderType=cv2.BORDER_CONSTANT)[..., None]
        self.diag = self.unknown * diag
        self.smooth = self.unknown / diag
        self.gather = 4 * self.unknown  # INTER_AREA averages a 2 x 2 block; the transpose of copying sums it
        self.coarse: _Level | None = None
        self.direct = None  # on the coarsest grid, when small: its LU factors

    def apply(self, e: np.ndarray) -> np.ndarray:
        """The operator (diagonal minus neighbours) on a field that is zero off the unknown pixels.

        Its values off the unknown pixels are left as they fall: everything that reads them masks them.
        """
        return self.diag * e - _neighbour_sum(e)

    def restrict(self, r: np.ndarray) -> np.ndarray:
        """Sum each 2 x 2 block onto the coarse unknown pixels (the transpose of `prolong`)."""
        h, w, c = r.shape
        if h % 2 or w % 2:
            padded = np.zeros((h + h % 2, w + w % 2, c), np.float32)
            padded[:h, :w] = r
            r = padded
        ch, cw = self.coarse.shape
        return cv2.resize(r, (cw, ch), interpolation=cv2.INTER_AREA).reshape(ch, cw, c) * self.coarse.gather

    def prolong(self, e: np.ndarray) -> np.ndarray:
        """Copy each coarse value to its 2 x 2 block (all of whose pixels are unknown where the value is not 0)."""
        h, w = self.shape
        ch, cw = e.shape[:2]
        return cv2.resize(e, (2 * cw, 2 * ch), interpolation=cv2.INTER_NEAREST).reshape(2 * ch, 2 * cw, -1)[:h, :w]

    def v_cycle(self, r: np.ndarray) -> np.ndarray:
        """An approximate solution of (operator) e = r: smooth, correct on the coarser grid, smooth again.

        The smoother is Jacobi, e = (r + neighbour sum of e) / diagonal on the unknown pixels: the same number of
        sweeps before and after, from zero, keeps the cycle symmetric (a valid CG preconditioner).
        """
        if self.direct is not None:
            e = np.zeros_like(r)
            e[self.mask] = self.direct.solve(r[self.mask].astype(np.float64))
            return e
        sweeps = _SWEEPS if self.coarse is not None else _COARSE_SWEEPS
        e, before = self.smooth * r, None
        for _ in range(sweeps - 1):
            before = _neighbour_sum(e)
            e = self.smooth * (r + before)
        if self.coarse is None:
            return e
        after = _neighbour_sum(e)
        # r minus the operator on e, which the last sweep leaves as the change in the neighbour sums
        # (off the unknown pixels it is garbage, which restrict masks)
        residual = after if before is None else after - before
        e += self.prolong(self.coarse.v_cycle(self.restrict(residual)))
        for _ in range(sweeps):
            e = self.smooth * (r + _neighbour_sum(e))
        return e


def _hierarchy(removed: np.ndarray, channels: int) -> _Level:
    """The grids from the image down: a coarse pixel is unknown when all four of its fine pixels are."""
    top = level = _Level(removed, channels)
    mask = removed
    while min(mask.shape) >= 2 * _COARSEST and mask.sum() > DIRECT_UNKNOWNS:
        h, w = mask.shape
        padded = np.zeros((h + h % 2, w + w % 2), bool)
        padded[:h, :w] = mask
        coarse = padded[0::2, 0::2] & padded[1::2, 0::2] & padded[0::2, 1::2] & padded[1::2, 1::2]
        if coarse.all() or not coarse.any():  # all unknown: no boundary left, the coarse system would be singular
            break
        level.coarse = _Level(coarse, channels)
        level, mask = level.coarse, coarse
    if level is not top and mask.sum() <= DIRECT_UNKNOWNS:
        from scipy.sparse.linalg import splu

        level.direct = splu(_operator(mask))
    return top


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """The sum of a * b over the unknown pixels (both are zero elsewhere or one of them is); einsum, not np.dot:
    BLAS threads would fight the network's for the cores."""
    return float(np.einsum("ijk,ijk->", a, b))


def _pcg(top: _Level, r: np.ndarray, tol: float, max_iter: int) -> np.ndarray | None:
    """Solve (operator) x = r in float32 by CG preconditioned with the V-cycle; None if it does not converge."""
    x = np.zeros_like(r)
    z = top.v_cycle(r)
    p = z
    rz = _dot(r, z)
    for _ in range(max_iter):
        if max(z.max(), -z.min()) < tol:
            return x
        q = top.apply(p)
        pq = _dot(p, q)
        if not pq > 0:
            return None
        alpha = rz / pq
        x += alpha * p
        r = r - alpha * q
        z = top.v_cycle(r)
        rz_next = _dot(r, z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    return None


def solve_fast(
    image: np.ndarray, removed: np.ndarray, start: np.ndarray | None = None, tol: float = 1e-4, max_iter: int = 100,
) -> np.ndarray | None:
    """The removed pixels' values by multigrid-preconditioned conjugate gradients, all channels as one
    block-diagonal system.

    CG runs in float32, which on large holes (an ill-conditioned system) gets to within about 1e-3; the float64
    residual of that answer is then solved again (iterative refinement) until the V-cycle's estimate of the
    remaining error is below tol everywhere.
    start: a first guess for every pixel (C, H, W), e.g. the imputation of a smaller removed set.
    None if CG does not converge in max_iter iterations (the caller then solves exactly).
    """
    if removed.sum() <= DIRECT_UNKNOWNS:  # a small system: the factorisation is quicker than building the grids
        return solve_exact(image, removed)
    top = _hierarchy(removed, image.shape[0])
    unknown64 = top.unknown.astype(np.float64)
    diag64 = top.diag.astype(np.float64)
    b = unknown64 * _kept_share(image, removed)
    x = np.zeros_like(b) if start is None else unknown64 * start.transpose(1, 2, 0)
    for stop in (max(tol, _FLOAT32_TOL), tol):
        r = b - (diag64 * x - cv2.filter2D(x, -1, _KERNEL64, borderType=cv2.BORDER_CONSTANT).reshape(x.shape))
        solved = _pcg(top, r.astype(np.float32), stop, max_iter)
        if solved is None:
            return None
        x += solved
    return x[removed].T
