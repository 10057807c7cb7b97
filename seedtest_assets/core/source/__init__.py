"""The source tables' owners (``organizations``, ``users``, ``topics``, ``items``,
``exam_sessions``, ``attempts``): every statement against them lives in this package.

- :mod:`.attempts`: raw attempts (windows, anomalies, the sensor's scan, appends);
- :mod:`.sessions`: ``exam_sessions`` (the sensor's completed-session scan);
- :mod:`.users`: ``users`` and ``organizations`` (students, goals, report selection);
- :mod:`.topics`: ``topics`` (names); ``items`` is only read joined to attempts.

The synthetic generator's bulk loader (:mod:`seedtest_assets.core.synthetic.load`) writes
them too: it is the stand-in for the exam product that owns them in production.
"""
