"""The hot ops of the radiance field, each with a compiled kernel and a PyTorch reference.

Families: ``hashgrid`` (multiresolution hash encoding, 2D/3D and the tri-plane),
``raymarch`` (occupancy grid, ray/box intersection, occupancy-guided ray marching) and
``volrend`` (packed volume rendering). ``nerfhead.ops.backend`` chooses the implementation.
"""
