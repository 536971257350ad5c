"""Records: one patient's care record across the platform's services."""
