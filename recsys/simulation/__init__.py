"""Closed-loop simulation of a news site with an A/B test of its article block
(``loop.ClosedLoop``, ``policies``)."""
