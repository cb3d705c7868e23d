"""The command-line layer (run_bench.py is its entry point): parsing the arguments (parser.py) and one
function per command that wires them to bench/ (which measures) and reports/ (which renders and
writes): model_commands.py for one model, runs.py for runs, sweeps, the gate and reports,
runfolder.py for run folders; common.py holds what they share. Nothing here measures or renders."""
