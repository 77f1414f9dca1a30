"""Online serving: the production model of each declared model behind HTTP.

Pure logic lives here without Dagster: request validation (``features``), a verified
loaded version (``loaded``), the background swap on a production change (``swap``),
the prediction log (``prediction_log``) and metrics (``metrics``).  ``app`` is the thin
Starlette layer over them.
"""
