"""Running measurements: jobs and their settings, the plan of a run, sweeps, the executors (local
processes, Ray), progress messages and the machine header of a run."""
