"""What is allowed: the neutral dose model, LQ biology, DVH metrics, protocols, evaluation.

Numpy is the only third-party import of this package, and it runs on CPython 3.8
(RayStation 11B-2024A script environments).
"""
