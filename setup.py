"""Packaging: the metadata is in pyproject.toml; this file maps the presets (configs/) and the kernel
sources (cuda_ext/) into the package as ``nerfhead.presets`` and ``nerfhead.kernels``, so that a
non-editable install carries them."""

from setuptools import find_packages, setup

SHIPPED = {"nerfhead.presets": "configs", "nerfhead.kernels": "cuda_ext"}

setup(
    packages=find_packages(include=["nerfhead", "nerfhead.*"]) + list(SHIPPED),
    package_dir=SHIPPED,
    package_data={"nerfhead.presets": ["*.yaml"], "nerfhead.kernels": ["*.h", "*.cpp", "*.cu"],
                  "nerfhead.audio": ["*.npz"]},
)
