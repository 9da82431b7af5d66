"""Rendering new videos: head motion, blinks, compositing, streaming encode."""
