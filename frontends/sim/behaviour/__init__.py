"""What the simulated agent does with a prompt (`agent`) and the side effects it has (`workspace`)."""
