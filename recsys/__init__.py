"""recsys: a PyTorch research framework for recommendation from implicit feedback.

Conventions used everywhere: users are rows, items are columns; ``Interactions.matrix`` is a
``(n_users, n_items)`` CSR matrix of raw strengths.
"""

__version__ = "0.1.0"
