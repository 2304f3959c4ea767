"""`transfers chaos`: a bank-style invariant test of the embedded stack under injected faults."""
