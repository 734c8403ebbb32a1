"""The store: event rows' state transitions and the predicates they share, written once.

Every stage above (dispatch, recording, capture, delivery, maintenance) moves a row through
these functions; none states the rules in SQL of its own.
"""
