"""The recording oracle's scoring engine (docs/scoring.md): the inputs of one epoch (`inputs`), the exact
reference computation (`engine`) and the vectorized depth path that must agree with it bit for bit (`depth_vector`).
Pure: no Django, no I/O, no floats.
"""
