"""L2: the bounded, token-budgeted context the review model sees."""
