"""A smooth plane map: a homography plus a smooth displacement mesh, with its inverse and image resampling.

`MeshWarp` maps points p of an output frame to points q of a source frame,

    q = H(p) + D(p),

H a 3x3 homography and D a displacement (in source pixels) sampled on a regular mesh over the output frame
and interpolated bilinearly (zero off the mesh's support is never needed: the mesh covers the frame and is
clamped at its border). `forward` is this map, `inverse` solves it for p by fixed-point iteration (D is smooth
and small next to H, so a few steps reach a hundredth of a pixel), and `resample` builds the output image by
sampling the source at q for every output pixel (what cv2.remap needs). Pixel centres are at integer
coordinates; points are (x, y) = (col, row).

Used by the rectification stage (canonical page -> original image) and by the photo-like renderer (photo ->
flat page); a base module so that both layers can share it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np


def apply_homography(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(N, 2) points (x, y) through the 3x3 matrix h."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    out = pts @ h[:, :2].T + h[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return out[:, :2] / out[:, 2:3]


def invert_homography_plus(h: np.ndarray, residual: Callable[[np.ndarray], np.ndarray] | None, q: np.ndarray,
                           iterations: int) -> np.ndarray:
    """Points p with H(p) + residual(p) = q: the fixed point of p = H^-1(q - residual(p)), from H^-1(q) (a small,
    smooth residual converges in a few iterations); H^-1(q) itself without a residual."""
    hinv = np.linalg.inv(h)
    p = apply_homography(hinv, q)
    if residual is None:
        return p
    for _ in range(iterations):
        p = apply_homography(hinv, q - residual(p))
    return p


@dataclass
class MeshWarp:
    homography: np.ndarray  # 3x3: output (x, y) -> source (x, y) before the displacement
    mesh: np.ndarray | None = None  # float64 (mh, mw, 2) source-pixel displacement (dx, dy) at mesh nodes
    mesh_origin: tuple[float, float] = (0.0, 0.0)  # output (x, y) of node [0, 0]
    mesh_step: float = 1.0  # output px between nodes

    def displacement(self, xy: np.ndarray) -> np.ndarray:
        """D(p) for (N, 2) output points: bilinear in the mesh, clamped at its border."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.mesh is None:
            return np.zeros_like(pts)
        mh, mw = self.mesh.shape[:2]
        gx = np.clip((pts[:, 0] - self.mesh_origin[0]) / self.mesh_step, 0.0, mw - 1.0)
        gy = np.clip((pts[:, 1] - self.mesh_origin[1]) / self.mesh_step, 0.0, mh - 1.0)
        x0 = np.minimum(np.floor(gx).astype(np.int64), max(mw - 2, 0))
        y0 = np.minimum(np.floor(gy).astype(np.int64), max(mh - 2, 0))
        x1, y1 = np.minimum(x0 + 1, mw - 1), np.minimum(y0 + 1, mh - 1)
        fx, fy = (gx - x0)[:, None], (gy - y0)[:, None]
        m = self.mesh
        top = m[y0, x0] * (1 - fx) + m[y0, x1] * fx
        bot = m[y1, x0] * (1 - fx) + m[y1, x1] * fx
        return top * (1 - fy) + bot * fy

    def forward(self, xy: np.ndarray) -> np.ndarray:
        """Output points -> source points."""
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return apply_homography(self.homography, pts) + self.displacement(pts)

    def inverse(self, xy: np.ndarray, iterations: int = 8) -> np.ndarray:
        """Source points -> output points (fixed point of p = H^-1(q - D(p)))."""
        q = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return invert_homography_plus(self.homography, None if self.mesh is None else self.displacement, q,
                                      iterations)

    def source_maps(self, shape_hw: tuple[int, int], block_px: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """float32 (H, W) source x and y of every output pixel. The map is evaluated every `block_px`
        pixels and interpolated linearly in between (a homography bends by far less than 0.01 px over a
        block of 8 px of a page-sized frame)."""
        h, w = shape_hw
        xs = np.arange(0, w + block_px, block_px, dtype=np.float64)
        ys = np.arange(0, h + block_px, block_px, dtype=np.float64)
        gx, gy = np.meshgrid(xs, ys)
        q = self.forward(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(len(ys), len(xs), 2).astype(np.float32)
        # linear upsampling of node values: node k sits at pixel k * block_px
        big_w, big_h = (len(xs) - 1) * block_px + 1, (len(ys) - 1) * block_px + 1
        up = _resize_corners(q, big_h, big_w)
        return np.ascontiguousarray(up[:h, :w, 0]), np.ascontiguousarray(up[:h, :w, 1])

    def resample(self, source: np.ndarray, shape_hw: tuple[int, int], fill=0,
                 interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Output image of size shape_hw: source sampled at forward(p) for every pixel p."""
        mx, my = self.source_maps(shape_hw)
        border = tuple(int(v) for v in np.atleast_1d(fill)) if np.ndim(fill) else fill
        return cv2.remap(np.ascontiguousarray(source), mx, my, interpolation, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=border)


def _resize_corners(nodes: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear upsampling where the first and last nodes land exactly on the first and last pixels."""
    nh, nw = nodes.shape[:2]
    ys = np.linspace(0.0, nh - 1.0, out_h)
    xs = np.linspace(0.0, nw - 1.0, out_w)
    mx, my = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    chans = [cv2.remap(np.ascontiguousarray(nodes[..., c]), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
             for c in range(nodes.shape[2])]
    return np.stack(chans, axis=-1)


def similarity_fit(src_xy: np.ndarray, dst_xy: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares similarity (scale, rotation, shift) src -> dst: (2x3 matrix, scale, rms residual)."""
    s = np.asarray(src_xy, np.float64)
    d = np.asarray(dst_xy, np.float64)
    sc, dc = s.mean(0), d.mean(0)
    s0, d0 = s - sc, d - dc
    # complex formulation: d0 = z * s0 with z = a + ib
    zs = s0[:, 0] + 1j * s0[:, 1]
    zd = d0[:, 0] + 1j * d0[:, 1]
    z = np.vdot(zs, zd) / max(np.vdot(zs, zs).real, 1e-12)
    a, b = z.real, z.imag
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = dc - m[:, :2] @ sc
    res = d - (s @ m[:, :2].T + m[:, 2])
    return m, float(abs(z)), float(np.sqrt(np.mean(np.sum(res ** 2, axis=1))))
