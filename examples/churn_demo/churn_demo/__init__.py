"""The churn example's source systems, outside the product: a seeded retail world (CRM,
order files, a ticket API), fault injection (``reliability``, ``chaos``) and the engine
benchmark (``benchmark``).  The pipeline reaches it only through the ticket API's
companion entry point (``companion.py``)."""
