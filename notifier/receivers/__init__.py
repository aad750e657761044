"""Receivers: one module per integration type behind ``base.Integration``; ``registry`` maps types to modules."""
