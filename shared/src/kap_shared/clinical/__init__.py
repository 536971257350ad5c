"""Clinical knowledge shared by several services (scoring instruments)."""
