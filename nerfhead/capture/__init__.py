"""Capture processing: video -> tracked identity dataset (landmarks, pose, masks, plate)."""
