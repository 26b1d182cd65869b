"""The per-namespace control process: owns the instances, serves the CLI, runs timers."""
