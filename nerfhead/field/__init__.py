"""Radiance fields: camera rays, head field, torso field."""
