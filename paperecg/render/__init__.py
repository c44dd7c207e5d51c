"""Synthetic printouts with exact labels; ECG-Image-Kit loader; augmentations; on-the-fly Dataset."""
from .labels import LeadTrace, RenderedPage
from .page import RenderStyle, random_style, render_page

__all__ = ["LeadTrace", "RenderedPage", "RenderStyle", "random_style", "render_page"]
