"""A faithful stand-in for the RayStation scripting API, with spine re-irradiation
phantoms, a photon dose engine and a TPS-like optimizer, used to test ``tps_scripts``.
"""
