"""Run a command; when standard input closes, kill it and print the CPU time it used.

Prints the command's pid on the first line at once, then, after standard input reaches end
of file, the user + system CPU seconds of the command (wait4's rusage, to the microsecond;
/proc/PID/stat counts in 10 ms ticks, too coarse for an idle process).

Usage: python3 cpu_time.py COMMAND [ARGS...]
"""

import os
import signal
import subprocess
import sys

child = subprocess.Popen(
    sys.argv[1:],
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
print(child.pid, flush=True)
sys.stdin.read()
child.send_signal(signal.SIGKILL)
_, _, usage = os.wait4(child.pid, 0)
print(f"{usage.ru_utime + usage.ru_stime:.6f}", flush=True)
