"""Animate mode: Deforum-compatible frame-by-frame animation (2D, 3D, Video Input, Interpolation)."""
