class LeadflowError(Exception):
    """Base of every domain error a service raises; views turn it into a message."""
