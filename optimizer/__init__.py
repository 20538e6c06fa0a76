"""How to get there: per-voxel SBRT limit maps, limit zones for a TPS optimizer,
closed-loop coverage tuning, and (offline only) convex fluence-map optimization.
"""
