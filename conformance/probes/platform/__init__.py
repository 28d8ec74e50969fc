"""The platform area: which scrape jobs each cluster must have up, and whence that expectation."""
