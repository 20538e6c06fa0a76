"""RayStation scripts: the adapter between TPS objects and the neutral model, and the
entry scripts a physicist runs from the script console.
"""
