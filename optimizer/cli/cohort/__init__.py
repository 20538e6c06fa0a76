"""``reirrad cohort``: the assessment (and the offline FMO strategies) over a cohort, on Dask.

One folder per patient (:mod:`.layout`), one pure task per patient (:mod:`.task`: the
same import and assessment as ``reirrad assess``), run on a Dask cluster
(:mod:`.engine`), one JSON record per patient, and the cohort's tables and figure
made from the records alone (:mod:`.outputs`, :mod:`.page`).  :mod:`.synthetic`
writes a cohort of phantom variants as DICOM so that all of it runs without patient
data.  This package sits on top of the layers (it imports ``tps_scripts`` and
``mock_tps``), like the rest of the command line.
"""
