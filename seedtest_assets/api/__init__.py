"""The θ-update service (``seedtest serve``): the original's JWT-scoped HTTP API, in-process.

``POST /analysis/irt/update-theta`` (also under ``/api/seedtest``) re-scores one student with
the same core function as the attempts sensor and ``seedtest score``
(:func:`seedtest_assets.core.mirt_ability.online.update_theta`), against an item bank kept in
memory (:mod:`.service`); tokens are verified against a JWKS (:mod:`.auth`); Prometheus
metrics in :mod:`.metrics`; each update shows in the Dagster UI as the student's
``student/mirt_ability`` materialization (:mod:`.events`). See docs/api.md.
"""
