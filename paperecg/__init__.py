"""paperecg: a paper-ECG digitizer and classifier (see ARCHITECTURE.md)."""
import os

# OpenMP threads that wait for work sleep instead of spinning: on a machine whose cores other processes share,
# spinning threads of torch and OpenCV steal them (a 12.9-MP photo on 2 threads: 7.9 s/record spinning, 2.3 s
# passive, bench/speed.py). Read by the OpenMP runtime when torch loads, so it is set here, before any import
# of torch; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
