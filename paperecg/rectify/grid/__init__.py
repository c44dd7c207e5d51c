"""The printed grid: every reading of it, and the page's scale it gives.

- darkness.py: the darkness images the readers read (`channel_darkness`, `grey_darkness`, `line_darkness`,
  `tile_darkness`), trace and print removed (`without_traces`), the page's polarity (`dark_page`,
  `light_paper`);
- spectrum.py: the two line families on the whole page, from its 2-D spectrum (`find_global_grid`);
- tiles.py: each tile's local period, direction and line phase, unwrapped across tiles (`measure_tiles`,
  `unwrap_tiles`);
- surface.py: the paper's surface fitted to the tiles (`SurfaceFit`, `TileFit`, `RefitPass`), from which
  `rectify/frame.py` builds the page frame;
- axis.py: the grid's period along each axis of a page read as it is (`GridScale`), its residual tilt, and the
  coarse-scan rule (`grid_unresolved`) the frame and the extractor share;
- residual.py: the grid as a check of a rectified page (its stretch and bends);
- ruler.py: the grid as each row's time ruler on a rectified page (`RowRuler`);
- warp.py: the grid as the rectified page's residual warp along x, everywhere on it (`GridWarp`).
"""
from .axis import (UNRESOLVED_GRID_PX_PER_MM, AxisScale, GridScale, estimate_axis_period, estimate_grid_scale,
                   estimate_skew, grid_unresolved, square_grid)
from .darkness import (channel_darkness, dark_page, grey_darkness, light_paper, line_darkness, local_mean, resize_by,
                       tile_darkness, without_traces)
from .residual import GridResidual, grid_residual, resize_to_canonical, time_axis_residual
from .ruler import RowRuler, row_ruler
from .spectrum import GlobalGrid, find_global_grid
from .surface import RefitPass, SurfaceFit, TileFit, fit_lattice, fit_surface, refit_from_surface
from .tiles import LATTICE_PER_PERIOD, TileGrid, grow_from, measure_tiles, unwrap_tiles
from .warp import GridWarp, grid_warp

__all__ = ["UNRESOLVED_GRID_PX_PER_MM", "AxisScale", "GridScale", "estimate_axis_period", "estimate_grid_scale",
           "estimate_skew", "grid_unresolved", "square_grid", "channel_darkness", "dark_page", "grey_darkness",
           "light_paper", "line_darkness", "local_mean", "resize_by", "tile_darkness", "without_traces", "GridResidual",
           "grid_residual", "resize_to_canonical", "time_axis_residual", "RowRuler", "row_ruler", "GlobalGrid",
           "find_global_grid", "RefitPass", "SurfaceFit", "TileFit", "fit_lattice", "fit_surface",
           "refit_from_surface", "LATTICE_PER_PERIOD", "TileGrid", "grow_from", "measure_tiles", "unwrap_tiles", "GridWarp", "grid_warp"]
