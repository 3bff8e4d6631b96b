"""What a running plugin sees: the run context, devices, seeds, numerics, processes, memory and progress."""
