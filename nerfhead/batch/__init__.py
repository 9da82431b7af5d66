"""Batch renders from a job list, in-process or on Ray (``nerfhead batch``)."""
